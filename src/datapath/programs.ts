/** The datapath's programs and where each one attaches. */
import type { TcDirection } from '../bpf/tc.js';

export interface TcProgramSpec {
  /** Source file bpf/<source>.c, and the program's name in it. */
  source: string;
  program: string;
  /** The hook of the pod's host-side veth it attaches to. */
  hook: TcDirection;
}

/** Programs attached to every pod's host-side veth. */
export const POD_PROGRAMS: readonly TcProgramSpec[] = [
  { source: 'from_container', program: 'from_container', hook: 'ingress' },
  { source: 'to_container', program: 'to_container', hook: 'egress' },
];

export interface NodeProgramSpec extends TcProgramSpec {
  /** The node device it attaches to: the collect_md VXLAN device or the uplink. */
  device: 'overlay' | 'uplink';
}

/** Programs attached to the node's own devices. */
export const NODE_PROGRAMS: readonly NodeProgramSpec[] = [
  { source: 'from_overlay', program: 'from_overlay', hook: 'ingress', device: 'overlay' },
  { source: 'from_netdev', program: 'from_netdev', hook: 'ingress', device: 'uplink' },
];
