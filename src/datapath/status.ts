/**
 * The datapath as it is on this node, read from the kernel: which helpers and attach
 * modes the kernel offers and which ones sluice falls back from, every pinned program with
 * where it is attached (each pinned link checked: a detached link shows as such), every
 * pinned map with its fill against its capacity.
 */
import { existsSync, readdirSync } from 'node:fs';
import { release } from 'node:os';
import { closeFd, objGet } from '../bpf/fd.js';
import { BpfMap, mapInfo } from '../bpf/map.js';
import { LINK_TYPE, pinnedLinkState } from '../bpf/link.js';
import { libbpf } from '../bpf/native.js';
import { PROG_TYPE, Program } from '../bpf/program.js';
import type { Config } from '../config/config.js';
import { nodePins } from './pins.js';

/** Helper ids (uapi enum bpf_func_id). */
const HELPER = { ringbuf_reserve: 131, redirect_neigh: 152, redirect_peer: 155 } as const;

export interface KernelFeatures {
  kernel: string;
  /** tcx links (Linux 6.6+), else classic tc filters. */
  tcx: boolean;
  redirectPeer: boolean;
  redirectNeigh: boolean;
  ringBuffer: boolean;
  /** What sluice does instead where a feature is missing. */
  fallbacks: string[];
}

function helper(id: number): boolean {
  return (libbpf().libbpf_probe_bpf_helper(PROG_TYPE.sched_cls, id, null) as number) === 1;
}

export function kernelFeatures(): KernelFeatures {
  const kernel = release();
  const [maj = 0, min = 0] = kernel.split('.').map((x) => parseInt(x, 10));
  const f = {
    kernel,
    tcx: maj > 6 || (maj === 6 && min >= 6),
    redirectPeer: helper(HELPER.redirect_peer),
    redirectNeigh: helper(HELPER.redirect_neigh),
    ringBuffer: helper(HELPER.ringbuf_reserve),
  };
  const fallbacks: string[] = [];
  if (!f.tcx) fallbacks.push('no tcx (Linux 6.6+): programs are attached as classic tc (cls_bpf) filters');
  if (!f.redirectPeer) fallbacks.push('no bpf_redirect_peer: sluice needs it to deliver into pods');
  if (!f.redirectNeigh) fallbacks.push('no bpf_redirect_neigh: direct routing needs it');
  if (!f.ringBuffer) fallbacks.push('no ring buffer: no datapath events');
  return { ...f, fallbacks };
}

export interface Attachment {
  device: string;
  hook: string;
  /** tcx/xdp link state: attached, or detached (pinned but no longer attaching anything). */
  state: 'attached' | 'detached';
  linkId: number;
}

export interface ProgramStatus {
  name: string;
  id: number;
  attachments: Attachment[];
}

export interface MapStatus {
  name: string;
  type: string;
  /** Entries now (null where they cannot be counted: ring buffers). Arrays are always full. */
  entries: number | null;
  maxEntries: number;
}

/** Pinned links: `links/<ifname>-<hook>` (tc hooks) and `xdp/<ifname>`. */
function pinnedLinks(cfg: Pick<Config, 'pinRoot'>): { path: string; device: string; hook: string }[] {
  const out: { path: string; device: string; hook: string }[] = [];
  const pins = nodePins(cfg);
  if (existsSync(pins.links)) {
    for (const f of readdirSync(pins.links)) {
      const m = /^(.*)-(ingress|egress)$/.exec(f);
      if (m) out.push({ path: `${pins.links}/${f}`, device: m[1]!.replace(/:/g, '.'), hook: m[2]! });
    }
  }
  const xdp = pins.xdpLinks;
  if (existsSync(xdp)) for (const f of readdirSync(xdp)) out.push({ path: `${xdp}/${f}`, device: f.replace(/:/g, '.'), hook: 'xdp' });
  return out;
}

export function programStatus(cfg: Pick<Config, 'pinRoot'>): ProgramStatus[] {
  const pins = nodePins(cfg);
  if (!existsSync(pins.progs)) return [];
  const byId = new Map<number, ProgramStatus>();
  for (const name of readdirSync(pins.progs).sort()) {
    const p = Program.openPinned(pins.program(name));
    try {
      const { id } = p.info();
      byId.set(id, { name, id, attachments: [] });
    } finally {
      p.close();
    }
  }
  for (const l of pinnedLinks(cfg)) {
    const s = pinnedLinkState(l.path);
    if (!s) continue;
    const owner = byId.get(s.programId);
    const a: Attachment = { device: l.device, hook: l.hook, state: s.ifindex !== 0 && (s.type === LINK_TYPE.tcx || s.type === LINK_TYPE.xdp) ? 'attached' : 'detached', linkId: s.id };
    if (owner) owner.attachments.push(a);
  }
  return [...byId.values()];
}

export function mapStatus(cfg: Pick<Config, 'pinRoot'>): MapStatus[] {
  const root = nodePins(cfg).root;
  if (!existsSync(root)) return [];
  const out: MapStatus[] = [];
  for (const name of readdirSync(root).sort()) {
    if (!name.startsWith('sl_')) continue;
    const fd = objGet(`${root}/${name}`, 'map');
    let info;
    try {
      info = mapInfo(fd);
    } catch (e) {
      closeFd(fd);
      throw e;
    }
    let entries: number | null = null;
    if (info.type === 'array' || info.type === 'percpu_array') entries = info.maxEntries;
    if (info.type === 'ringbuf' || entries !== null) {
      closeFd(fd);
    } else {
      const m = BpfMap.fromFd(fd, true);
      try {
        entries = m.count();
      } finally {
        m.close();
      }
    }
    out.push({ name, type: info.type, entries, maxEntries: info.maxEntries });
  }
  return out;
}
