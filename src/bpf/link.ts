/**
 * BPF links, separate from programs (as cilium/ebpf's `link` package has them): create a
 * link of a program to a hook, pin it so it outlives the process, swap its program, detach
 * it; and what a link says about itself (type, program, device), read by fd or pin. The
 * hook-specific primitives (tc.ts, xdp.ts, cgroup.ts) are built on these.
 */
import { constants } from 'node:os';
import { existsSync } from 'node:fs';
import { LINK_INFO } from './abi.js';
import { BpfError } from './errors.js';
import { closeFd, objGet, objInfo } from './fd.js';
import { libbpf } from './native.js';
import { unpin } from '../sys/bpffs.js';
import { pinAtomically } from './pin.js';

/** errno values from Node's own table, not copied by hand. */
const { ENOENT, EINVAL, ENOLINK } = constants.errno;

/** uapi enum bpf_link_type (the ones sluice makes). */
export const LINK_TYPE = { cgroup: 3, xdp: 6, tcx: 11 } as const;

/** uapi enum bpf_attach_type: the hooks sluice links programs to (test/unit/attach-types.test.ts checks them). */
export const ATTACH_TYPE = {
  cgroup_inet_ingress: 0,
  cgroup_inet_egress: 1,
  cgroup_inet4_connect: 10,
  cgroup_udp4_sendmsg: 14,
  cgroup_udp4_recvmsg: 19,
  cgroup_inet4_getpeername: 29,
  xdp: 37,
  tcx_ingress: 46,
  tcx_egress: 47,
} as const;

export interface LinkState {
  type: number;
  id: number;
  programId: number;
  /** For xdp and tcx links: the device, 0 once it is gone or the link was detached. */
  ifindex: number;
}

export function linkState(fd: number): LinkState {
  const b = objInfo(fd, LINK_INFO.size, `link fd ${fd}`);
  return { type: b.readUInt32LE(LINK_INFO.type), id: b.readUInt32LE(LINK_INFO.id), programId: b.readUInt32LE(LINK_INFO.progId), ifindex: b.readUInt32LE(LINK_INFO.ifindex) };
}

/** The state of the link pinned at `path`, or undefined when nothing is pinned there. */
export function pinnedLinkState(path: string): LinkState | undefined {
  let fd: number;
  try {
    fd = objGet(path, 'link');
  } catch {
    return undefined;
  }
  try {
    return linkState(fd);
  } finally {
    closeFd(fd);
  }
}

/** Whether the device link pinned at `path` still attaches its program (pinned, and not detached). */
export function linkAttached(path: string): boolean {
  const s = pinnedLinkState(path);
  return s !== undefined && s.ifindex !== 0;
}

/** struct bpf_link_create_opts of libbpf 1.1 (sz, flags, ...); zero past `flags`. */
const LINK_CREATE_OPTS_SIZE = 64;

function linkCreateOpts(flags: number): Buffer {
  const b = Buffer.alloc(LINK_CREATE_OPTS_SIZE);
  b.writeBigUInt64LE(BigInt(LINK_CREATE_OPTS_SIZE), 0);
  b.writeUInt32LE(flags, 8);
  return b;
}

/**
 * Links `progFd` to `target` (an ifindex, or a cgroup's fd) at `attachType`, with `flags`
 * in bpf_link_create_opts when given. Returns the new link's fd, or -errno: what an error
 * means (a kernel without the hook, a hook held by someone else) is the caller's call.
 */
export function createLink(progFd: number, target: number, attachType: number, flags?: number): number {
  return libbpf().bpf_link_create(progFd, target, attachType, flags === undefined ? null : linkCreateOpts(flags)) as number;
}

/** Pins the new link `fd` at `path` (atomically); detaches the link when pinning fails. Closes `fd` either way. */
export function pinNewLink(fd: number, path: string, what: string): void {
  try {
    pinAtomically(fd, path, what);
  } catch (e) {
    libbpf().bpf_link_detach(fd);
    throw e;
  } finally {
    closeFd(fd);
  }
}

/** Runs `fn` with an fd of the link pinned at `path` (closed afterwards). `what` names it in errors. */
export function withPinnedLink<T>(path: string, what: string, fn: (fd: number) => T): T {
  const fd = objGet(path, what);
  try {
    return fn(fd);
  } finally {
    closeFd(fd);
  }
}

/**
 * Swaps the program of link `fd` for `progFd` atomically: 'replaced', or 'gone' when the
 * link no longer holds a hook (its device was removed, or it was detached), so a new link
 * is needed. Any other error is thrown, as `op`.
 */
export function updateLink(fd: number, progFd: number, op: string): 'replaced' | 'gone' {
  const ret = libbpf().bpf_link_update(fd, progFd, null) as number;
  if (ret === 0) return 'replaced';
  if (-ret === ENOLINK || -ret === ENOENT || -ret === EINVAL) return 'gone';
  throw new BpfError(op, -ret);
}

/** Detaches the link pinned at `path` and removes the pin. False when nothing was pinned there or the link was detached already. */
export function detachPinnedLink(path: string, what: string): boolean {
  if (!existsSync(path)) return false;
  const removed = withPinnedLink(path, what, (fd) => (libbpf().bpf_link_detach(fd) as number) === 0);
  unpin(path);
  return removed;
}
