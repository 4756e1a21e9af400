/**
 * Attaching programs to a cgroup (v2) hook as a pinned bpf_link (cgroup links: Linux 5.7+,
 * so every kernel sluice supports): the link outlives the process, a new build is swapped
 * in atomically, removing the link detaches it. The socket hooks (connect, sendmsg,
 * recvmsg, getpeername) are where a socket-level service load balancer runs.
 */
import { closeSync, constants, existsSync, openSync } from 'node:fs';
import { BpfError } from './errors.js';
import { ATTACH_TYPE, createLink, detachPinnedLink, pinNewLink, updateLink, withPinnedLink } from './link.js';
import { unpin } from '../sys/bpffs.js';
import type { Program } from './program.js';

/** The cgroup hooks, by the name sluice uses for them. */
export const CGROUP_HOOKS = {
  inet_ingress: ATTACH_TYPE.cgroup_inet_ingress,
  inet_egress: ATTACH_TYPE.cgroup_inet_egress,
  connect4: ATTACH_TYPE.cgroup_inet4_connect,
  sendmsg4: ATTACH_TYPE.cgroup_udp4_sendmsg,
  recvmsg4: ATTACH_TYPE.cgroup_udp4_recvmsg,
  getpeername4: ATTACH_TYPE.cgroup_inet4_getpeername,
} as const;

export type CgroupHook = keyof typeof CGROUP_HOOKS;

export interface CgroupAttachment {
  cgroup: string;
  hook: CgroupHook;
  programId: number;
  linkPin: string;
  /** A new link, or the program swapped on the pinned one. */
  action: 'attached' | 'replaced';
}

/** Links `prog` to hook `hook` of the cgroup directory `cgroup` and pins the link at `linkPin`, or swaps `prog` in on the link pinned there. */
export function attachCgroup(prog: Program, cgroup: string, hook: CgroupHook, linkPin: string): CgroupAttachment {
  const programId = prog.info().id;
  if (existsSync(linkPin)) {
    const r = withPinnedLink(linkPin, 'cgroup link', (fd) => updateLink(fd, prog.fd, `replace the program on cgroup link ${linkPin}`));
    if (r === 'replaced') return { cgroup, hook, programId, linkPin, action: r };
    unpin(linkPin); // the cgroup is gone: make a new link
  }
  let cgFd: number;
  try {
    cgFd = openSync(cgroup, constants.O_RDONLY | constants.O_DIRECTORY);
  } catch (e) {
    throw new Error(`open cgroup ${cgroup}: ${(e as Error).message}`);
  }
  try {
    const fd = createLink(prog.fd, cgFd, CGROUP_HOOKS[hook]);
    if (fd < 0) throw new BpfError(`attach ${prog.name} to ${hook} of cgroup ${cgroup}`, -fd);
    pinNewLink(fd, linkPin, `cgroup link of ${prog.name}`);
  } finally {
    closeSync(cgFd);
  }
  return { cgroup, hook, programId, linkPin, action: 'attached' };
}

/** Detaches the cgroup link pinned at `linkPin` and removes the pin. True when something was removed. */
export function detachCgroup(linkPin: string): boolean {
  return detachPinnedLink(linkPin, 'cgroup link');
}
