/** Attaching XDP programs to a device. */
import { BpfError } from './errors.js';
import { callChecked } from './log.js';
import { libbpf } from './native.js';
import type { Program } from './program.js';

export type XdpMode = 'native' | 'generic' | 'auto';
const XDP_FLAGS = { UPDATE_IF_NOEXIST: 1, SKB_MODE: 2, DRV_MODE: 4 } as const;

function modeFlags(mode: XdpMode): number {
  return mode === 'generic' ? XDP_FLAGS.SKB_MODE : mode === 'native' ? XDP_FLAGS.DRV_MODE : 0;
}

/** Attaches (or replaces) the device's XDP program. */
export function attachXdp(prog: Program, ifindex: number, mode: XdpMode = 'auto'): void {
  callChecked(`attach XDP program ${prog.name} to ifindex ${ifindex} (${mode} mode)`,
    () => libbpf().bpf_xdp_attach(ifindex, prog.fd, modeFlags(mode), null) as number);
}

export function detachXdp(ifindex: number, mode: XdpMode = 'auto'): void {
  callChecked(`detach XDP program from ifindex ${ifindex}`, () => libbpf().bpf_xdp_detach(ifindex, modeFlags(mode), null) as number);
}

/** The id of the XDP program attached to the device, or undefined. */
export function queryXdp(ifindex: number, mode: XdpMode = 'auto'): number | undefined {
  const id = [0];
  const ret = libbpf().bpf_xdp_query_id(ifindex, modeFlags(mode), id) as number;
  if (ret < 0) throw new BpfError(`query XDP program of ifindex ${ifindex}`, -ret);
  return id[0] || undefined;
}
