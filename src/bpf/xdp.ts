/**
 * Attaching XDP programs to a device: as an XDP bpf_link (Linux 5.9+) pinned so it
 * outlives the process and holds the hook (`ip link set dev X xdp off` is refused while it
 * does), a new build swapped in atomically on the link; or, for tests and tools, the plain
 * netlink attach (attachXdp/detachXdp).
 */
import { constants } from 'node:os';
import { existsSync } from 'node:fs';
import { BpfError } from './errors.js';
import { ATTACH_TYPE, LINK_TYPE, createLink, detachPinnedLink, linkState, pinNewLink, updateLink, withPinnedLink } from './link.js';
import { callChecked } from './log.js';
import { libbpf } from './native.js';
import { unpin } from '../sys/bpffs.js';
import { Program } from './program.js';

/** errno values from Node's own table, not copied by hand. */
const { EBUSY, EEXIST } = constants.errno;

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

// ---------------------------------------------------------------------------
// XDP links

/** How an XDP link runs its program: in the driver, or generic (skb) mode. */
export type XdpLinkMode = 'driver' | 'generic';

export interface XdpLinkState {
  ifindex: number;
  mode: XdpLinkMode;
  programId: number;
  linkPin: string;
}

export interface XdpLinkResult extends XdpLinkState {
  /** What was done: nothing (already attached), the program swapped on the link, or a new link. */
  action: 'unchanged' | 'replaced' | 'attached';
  /** Why driver mode was not used, when it was not. */
  driverError?: string;
}

/** The id of the XDP program attached to `ifindex` in `mode` (any mode when undefined), or 0. */
function xdpProgId(ifindex: number, mode?: XdpLinkMode): number {
  const flags = mode === 'driver' ? XDP_FLAGS.DRV_MODE : mode === 'generic' ? XDP_FLAGS.SKB_MODE : 0;
  const id = [0];
  const ret = libbpf().bpf_xdp_query_id(ifindex, flags, id) as number;
  if (ret < 0) throw new BpfError(`query the XDP program of ifindex ${ifindex}`, -ret);
  return id[0]!;
}

function modeOf(ifindex: number, programId: number): XdpLinkMode {
  return xdpProgId(ifindex, 'driver') === programId ? 'driver' : 'generic';
}

function programName(id: number): string {
  try {
    const p = Program.fromId(id);
    try {
      return p.info().name;
    } finally {
      p.close();
    }
  } catch {
    return '?';
  }
}

/** Whether link `fd` is an XDP link on `ifindex` whose program is the one the device runs. */
function holdsHook(fd: number, ifindex: number): { programId: number } | undefined {
  const s = linkState(fd);
  return s.type === LINK_TYPE.xdp && s.ifindex === ifindex && xdpProgId(ifindex) === s.programId ? { programId: s.programId } : undefined;
}

/** The XDP link pinned at `linkPin` as the kernel has it, or undefined when it does not hold `ifindex`'s hook. */
export function xdpLinkState(ifindex: number, linkPin: string): XdpLinkState | undefined {
  if (!ifindex || !existsSync(linkPin)) return undefined;
  return withPinnedLink(linkPin, 'XDP link', (fd) => {
    const h = holdsHook(fd, ifindex);
    return h && { ifindex, mode: modeOf(ifindex, h.programId), programId: h.programId, linkPin };
  });
}

/**
 * Links `prog` to the XDP hook of `ifindex` (device `device`, for messages), driver mode if
 * the driver takes it, else generic, and pins the link at `linkPin`; or swaps `prog` in on
 * the link already pinned there. A program of the same name attached without a link (by
 * hand, or a link pin lost) is taken over; any other program on the hook is left alone and
 * the attach refused.
 */
export function attachXdpLink(prog: Program, ifindex: number, device: string, linkPin: string): XdpLinkResult {
  const programId = prog.info().id;
  const lib = libbpf();
  if (existsSync(linkPin)) {
    const done = withPinnedLink(linkPin, 'XDP link', (fd): XdpLinkResult | undefined => {
      const h = holdsHook(fd, ifindex);
      if (!h) return undefined;
      if (h.programId === programId) return { ifindex, mode: modeOf(ifindex, programId), programId, linkPin, action: 'unchanged' };
      if (updateLink(fd, prog.fd, `replace the program on XDP link ${linkPin}`) === 'replaced') {
        return { ifindex, mode: modeOf(ifindex, programId), programId, linkPin, action: 'replaced' };
      }
      return undefined;
    });
    if (done) return done;
    unpin(linkPin); // a link whose device is gone (or was detached): make a new one
  }
  const other = xdpProgId(ifindex);
  if (other) {
    const name = programName(other);
    if (name !== prog.name) {
      throw new Error(`${device} already has an XDP program (id ${other}, '${name}') that is not sluice's: not replacing it`);
    }
    // Ours, attached without a link: take the hook over.
    lib.bpf_xdp_detach(ifindex, 0, null);
  }
  let driverError: string | undefined;
  let mode: XdpLinkMode = 'driver';
  let fd = createLink(prog.fd, ifindex, ATTACH_TYPE.xdp, XDP_FLAGS.DRV_MODE);
  if (fd < 0) {
    if (-fd === EBUSY || -fd === EEXIST) throw new BpfError(`attach ${prog.name} to ${device}: another XDP program holds the hook`, -fd);
    driverError = new BpfError(`driver mode on ${device}`, -fd).message;
    mode = 'generic';
    fd = createLink(prog.fd, ifindex, ATTACH_TYPE.xdp, XDP_FLAGS.SKB_MODE);
    if (fd < 0) throw new BpfError(`attach ${prog.name} to ${device} (driver mode failed: ${driverError}; generic mode)`, -fd);
  }
  pinNewLink(fd, linkPin, `XDP link of ${prog.name} on ${device}`);
  return { ifindex, mode, programId, linkPin, action: 'attached', ...(driverError ? { driverError } : {}) };
}

/** Detaches the XDP link pinned at `linkPin` and removes the pin. True when something was removed. */
export function detachXdpLink(linkPin: string): boolean {
  if (!existsSync(linkPin)) return false;
  try {
    return detachPinnedLink(linkPin, 'XDP link');
  } finally {
    unpin(linkPin);
  }
}
