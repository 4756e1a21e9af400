/**
 * What the prefilter's maps must hold: sl_prefilter (denied CIDRs, LPM trie) and
 * sl_prefilter_ct (per-CPU packets/bytes per rule); their accessors are src/maps/prefilter.ts
 * and prefilter-counters.ts. The XDP program xdp_prefilter is attached to the uplink by
 * attach.ts.
 */
import type { Config } from '../config/config.js';
import { PREFILTER_MAP, readPrefilterRules, writePrefilterRules } from '../maps/prefilter.js';
import { PREFILTER_COUNTERS_MAP, deletePrefilterCounters, readPrefilterCounterIds } from '../maps/prefilter-counters.js';
import { diffRules, type PrefilterEntry, type RuleDiff } from './cidr.js';

/** Whether this node's prefilter maps are pinned (the datapath was loaded). */
export function prefilterMapsPinned(cfg: Pick<Config, 'pinRoot'>): boolean {
  return PREFILTER_MAP.pinned(cfg) && PREFILTER_COUNTERS_MAP.pinned(cfg);
}

/**
 * Makes sl_prefilter hold exactly `entries` (adds, rewrites, deletes) and drops the
 * counters of rules that are gone (rule ids are never reused, so a new rule starts from
 * zero). Returns what was done.
 */
export function syncRules(cfg: Pick<Config, 'pinRoot'>, entries: readonly PrefilterEntry[]): RuleDiff {
  const d = diffRules(entries, readPrefilterRules(cfg), readPrefilterCounterIds(cfg));
  // Insert before delete: a source covered by both a new and an old rule is never let through.
  writePrefilterRules(cfg, [...d.add, ...d.update], d.del);
  deletePrefilterCounters(cfg, d.staleCounters);
  return d;
}
