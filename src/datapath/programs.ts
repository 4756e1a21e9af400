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
