/**
 * Attaching programs to a device's tc hooks. tcx links (Linux 6.6+) are preferred: they
 * attach and replace atomically and coexist with other programs; the link is pinned so
 * it outlives the process. Older kernels get a clsact qdisc with a direct-action
 * cls_bpf filter through libbpf's bpf_tc_* API. Attaching is separate from loading.
 */
import { constants } from 'node:os';
import { existsSync } from 'node:fs';
import { opts } from './abi.js';
import { BpfError } from './errors.js';
import { ATTACH_TYPE, createLink, detachPinnedLink, pinNewLink, updateLink, withPinnedLink } from './link.js';
import { callChecked } from './log.js';
import { libbpf } from './native.js';
import { unpin } from '../sys/bpffs.js';
import { Program } from './program.js';

/** errno values from Node's own table, not copied by hand. */
const { ENOENT, EEXIST, EINVAL, EOPNOTSUPP, ENODEV } = constants.errno;

export type TcDirection = 'ingress' | 'egress';
export type TcMode = 'tcx' | 'tc';

const BPF_TC = { ingress: 1, egress: 2 } as const;
const BPF_TCX = { ingress: ATTACH_TYPE.tcx_ingress, egress: ATTACH_TYPE.tcx_egress } as const;
const BPF_TC_F_REPLACE = 1;
/** The cls_bpf filter sluice owns on each hook: handle 1, priority 1. */
const TC_HANDLE = 1;
const TC_PRIORITY = 1;


export interface TcAttachment {
  ifindex: number;
  direction: TcDirection;
  mode: TcMode;
  programId: number;
  /** Pin of the tcx link (tcx mode only). */
  linkPin?: string;
  /** A new link or filter, or the program swapped on the pinned tcx link. (cls_bpf's replace flag does not tell which.) */
  action: 'attached' | 'replaced';
}

export interface TcAttachOptions {
  /** Where the tcx link is pinned; required for tcx (an unpinned link dies with the process). */
  linkPin?: string;
  /** Force a mode; default: tcx when the kernel has it, else tc. */
  mode?: TcMode;
}

let tcxSupported: boolean | undefined;

/** Whether this kernel has tcx links, as learnt from the last attach attempt. */
export function tcxAvailable(): boolean | undefined {
  return tcxSupported;
}

function tcHook(ifindex: number, direction: TcDirection) {
  return opts('bpf_tc_hook').set('ifindex', ifindex).set('attach_point', BPF_TC[direction]);
}

/** 'attached' (a new link), 'replaced' (the program swapped on the pinned link), or false: this kernel has no tcx. */
function attachTcx(prog: Program, ifindex: number, direction: TcDirection, linkPin: string): 'attached' | 'replaced' | false {
  if (existsSync(linkPin)) {
    const r = withPinnedLink(linkPin, 'tcx link', (fd) => updateLink(fd, prog.fd, `replace program on tcx link ${linkPin}`));
    if (r === 'replaced') return r;
    unpin(linkPin); // the link's device is gone (ifindex reused): make a new link
  }
  const fd = createLink(prog.fd, ifindex, BPF_TCX[direction]);
  if (fd < 0) {
    if (-fd === EINVAL || -fd === EOPNOTSUPP) return false;
    throw new BpfError(`attach ${prog.name} to tcx ${direction} of ifindex ${ifindex}`, -fd);
  }
  pinNewLink(fd, linkPin, `tcx link of ${prog.name}`);
  return 'attached';
}

function attachClassic(prog: Program, ifindex: number, direction: TcDirection): void {
  const lib = libbpf();
  const hook = tcHook(ifindex, direction);
  callChecked(`create clsact qdisc on ifindex ${ifindex}`, () => lib.bpf_tc_hook_create(hook.buf) as number, [EEXIST]);
  const o = opts('bpf_tc_opts').set('prog_fd', prog.fd).set('flags', BPF_TC_F_REPLACE)
    .set('handle', TC_HANDLE).set('priority', TC_PRIORITY);
  callChecked(`attach ${prog.name} to tc ${direction} of ifindex ${ifindex}`, () => lib.bpf_tc_attach(hook.buf, o.buf) as number);
}

export function attachTc(prog: Program, ifindex: number, direction: TcDirection, o: TcAttachOptions = {}): TcAttachment {
  const programId = prog.info().id;
  const wantTcx = o.mode !== 'tc' && tcxSupported !== false && o.linkPin !== undefined;
  const tcx = wantTcx && attachTcx(prog, ifindex, direction, o.linkPin!);
  if (tcx) {
    tcxSupported = true;
    detachClassic(ifindex, direction); // a tc filter left by an older sluice would run too
    return { ifindex, direction, mode: 'tcx', programId, linkPin: o.linkPin!, action: tcx };
  }
  if (o.mode === 'tcx') throw new BpfError(`attach ${prog.name} with tcx`, EOPNOTSUPP, 'this kernel has no tcx links (Linux 6.6+)');
  if (wantTcx) tcxSupported = false;
  attachClassic(prog, ifindex, direction);
  return { ifindex, direction, mode: 'tc', programId, action: 'attached' };
}

function detachClassic(ifindex: number, direction: TcDirection): boolean {
  const hook = tcHook(ifindex, direction);
  const o = opts('bpf_tc_opts').set('handle', TC_HANDLE).set('priority', TC_PRIORITY);
  // ENOENT/EINVAL: no clsact qdisc or no filter of ours; ENODEV: the device itself is gone
  // (a pod's namespace is destroyed asynchronously, so its veth can vanish mid-teardown).
  // Each means nothing is left to detach.
  return callChecked(`detach tc ${direction} of ifindex ${ifindex}`, () => libbpf().bpf_tc_detach(hook.buf, o.buf) as number, [ENOENT, EINVAL, ENODEV]) === 0;
}

/** Detaches sluice's program from a hook, whichever way it was attached. True when something was removed. */
export function detachTc(ifindex: number, direction: TcDirection, o: { linkPin?: string } = {}): boolean {
  let removed = false;
  if (o.linkPin) removed = detachPinnedLink(o.linkPin, 'tcx link');
  if (ifindex > 0 && detachClassic(ifindex, direction)) removed = true;
  return removed;
}

/** The program id attached with tc (cls_bpf, sluice's handle/priority) on a hook, or undefined. */
export function queryTc(ifindex: number, direction: TcDirection): number | undefined {
  const hook = tcHook(ifindex, direction);
  const o = opts('bpf_tc_opts').set('handle', TC_HANDLE).set('priority', TC_PRIORITY);
  const ret = callChecked(`query tc ${direction} of ifindex ${ifindex}`, () => libbpf().bpf_tc_query(hook.buf, o.buf) as number, [ENOENT, EINVAL]);
  if (ret < 0) return undefined;
  return Number(o.get('prog_id'));
}
