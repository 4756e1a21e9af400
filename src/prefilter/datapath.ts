/**
 * The prefilter's maps in the kernel: sl_prefilter (denied CIDRs, LPM trie) and
 * sl_prefilter_ct (per-CPU packets/bytes per rule). The XDP program xdp_prefilter is
 * attached to the uplink by attach.ts.
 */
import { existsSync } from 'node:fs';
import { BpfMap } from '../bpf/map.js';
import type { Config } from '../config/config.js';
import { nodePins } from '../datapath/pins.js';
import { diffRules, type MapRule, type PrefilterEntry, type RuleDiff } from './cidr.js';

export const PREFILTER_MAP = 'sl_prefilter';
export const PREFILTER_COUNTERS_MAP = 'sl_prefilter_ct';

interface MapKey { prefixlen: number; addr: string }
interface CtKey { id: number }
interface CtVal { packets: bigint; bytes: bigint }

export interface Counters {
  packets: number;
  bytes: number;
}

function openMap<K, V>(cfg: Pick<Config, 'pinRoot'>, name: string): BpfMap<K, V> {
  return BpfMap.openPinned<K, V>(nodePins(cfg).map(name));
}

function withMap<K, V, T>(cfg: Pick<Config, 'pinRoot'>, name: string, fn: (m: BpfMap<K, V>) => T): T {
  const m = openMap<K, V>(cfg, name);
  try {
    return fn(m);
  } finally {
    m.close();
  }
}

/** Whether this node's prefilter maps are pinned (the datapath was loaded). */
export function prefilterMapsPinned(cfg: Pick<Config, 'pinRoot'>): boolean {
  const pins = nodePins(cfg);
  return existsSync(pins.map(PREFILTER_MAP)) && existsSync(pins.map(PREFILTER_COUNTERS_MAP));
}

const toCidr = (k: MapKey) => `${k.addr}/${k.prefixlen}`;
function toKey(cidr: string): MapKey {
  const [addr, len] = cidr.split('/');
  return { addr: addr!, prefixlen: Number(len) };
}

/** sl_prefilter as CIDR -> rule. */
export function readRules(cfg: Pick<Config, 'pinRoot'>): Map<string, MapRule> {
  return withMap<MapKey, MapRule, Map<string, MapRule>>(cfg, PREFILTER_MAP,
    (m) => new Map([...m.entries()].map(([k, v]) => [toCidr(k), { id: v.id, flags: v.flags }])));
}

/** sl_prefilter_ct summed over CPUs, by rule id. */
export function readCounters(cfg: Pick<Config, 'pinRoot'>): Map<number, Counters> {
  return withMap<CtKey, CtVal[], Map<number, Counters>>(cfg, PREFILTER_COUNTERS_MAP, (m) => {
    const out = new Map<number, Counters>();
    for (const [k, perCpu] of m.entries()) {
      out.set(k.id, {
        packets: Number(perCpu.reduce((a, v) => a + v.packets, 0n)),
        bytes: Number(perCpu.reduce((a, v) => a + v.bytes, 0n)),
      });
    }
    return out;
  });
}

/**
 * Makes sl_prefilter hold exactly `entries` (adds, rewrites, deletes) and drops the
 * counters of rules that are gone (rule ids are never reused, so a new rule starts from
 * zero). Returns what was done.
 */
export function syncRules(cfg: Pick<Config, 'pinRoot'>, entries: readonly PrefilterEntry[]): RuleDiff {
  const have = readRules(cfg);
  const counterIds = withMap<CtKey, CtVal[], number[]>(cfg, PREFILTER_COUNTERS_MAP, (m) => [...m.keys()].map((k) => k.id));
  const d = diffRules(entries, have, counterIds);
  withMap<MapKey, MapRule, void>(cfg, PREFILTER_MAP, (m) => {
    // Insert before delete: a source covered by both a new and an old rule is never let through.
    for (const [cidr, r] of [...d.add, ...d.update]) m.update(toKey(cidr), r);
    for (const cidr of d.del) m.delete(toKey(cidr));
  });
  withMap<CtKey, CtVal[], void>(cfg, PREFILTER_COUNTERS_MAP, (ct) => {
    for (const id of d.staleCounters) ct.delete({ id });
  });
  return d;
}
