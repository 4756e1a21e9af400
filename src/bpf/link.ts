/** BPF links: what a link says about itself (type, program, device), read by fd or pin. */
import { LINK_INFO } from './abi.js';
import { closeFd, objGet, objInfo } from './fd.js';

export const LINK_TYPE = { xdp: 6, tcx: 11 } as const;

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
