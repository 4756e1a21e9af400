/**
 * sl_policy: what each local endpoint may exchange (LPM trie; struct sl_policy_key → struct
 * sl_policy_entry), as the agent writes it: made equal to the compiled entries
 * (src/policy/compile.ts) by reading it back and writing the difference. New and changed
 * entries go in before stale ones go, so a flow both the old and the new policies allow is
 * never dropped in between.
 */
import type { BpfMap } from '../bpf/map.js';
import type { Config } from '../config/config.js';
import { applyMapDiff } from './diff.js';
import { MapDef } from './map.js';

export interface PolicyKey { prefixlen: number; endpoint: number; identity: number; dir: number; protocol: number; dport: number }
export interface PolicyValue { policy: number; flags: number }

export interface PolicyEntry {
  key: PolicyKey;
  value: PolicyValue;
}

export const POLICY_MAP = new MapDef<PolicyKey, PolicyValue>({
  name: 'sl_policy',
  key: { name: 'sl_policy_key', fields: { prefixlen: true, endpoint: true, identity: true, dir: true, protocol: true, dport: true } },
  value: { name: 'sl_policy_entry', fields: { policy: true, flags: true } },
  watchFill: true,
});

/** The canonical string of a policy key: what entries are keyed by in TypeScript (the compiler's output included). */
export const policyKeyString = (k: PolicyKey): string => `${k.endpoint}/${k.identity}/${k.dir}/${k.protocol}/${k.dport}/${k.prefixlen}`;

export interface PolicyMapChange {
  /** Entries added or rewritten. */
  written: number;
  /** Stale entries deleted. */
  removed: number;
}

function entriesOf(m: BpfMap<PolicyKey, PolicyValue>): Map<string, PolicyEntry> {
  const out = new Map<string, PolicyEntry>();
  for (const [key, value] of m.entries()) out.set(policyKeyString(key), { key, value });
  return out;
}

/** Every entry, keyed by `policyKeyString`. */
export function readPolicy(cfg: Pick<Config, 'pinRoot'>): Map<string, PolicyEntry> {
  return POLICY_MAP.with(cfg, entriesOf);
}

/** Writes `entries` into sl_policy, touching nothing else (for keys no other entry shares). */
export function writePolicy(cfg: Pick<Config, 'pinRoot'>, entries: ReadonlyMap<string, PolicyEntry>): void {
  POLICY_MAP.with(cfg, (m) => {
    for (const e of entries.values()) m.update(e.key, e.value);
  });
}

/** Makes sl_policy hold exactly `want` (keyed by `policyKeyString`); returns what it changed. */
export function syncPolicy(cfg: Pick<Config, 'pinRoot'>, want: ReadonlyMap<string, PolicyEntry>): PolicyMapChange {
  return POLICY_MAP.with(cfg, (m) => {
    const d = applyMapDiff(entriesOf(m), want, (a, b) => a.value.policy === b.value.policy && a.value.flags === b.value.flags, {
      write: (_, e) => m.update(e.key, e.value),
      remove: (_, e) => m.delete(e.key),
    });
    return { written: d.added.length + d.changed.length, removed: d.removed.length };
  });
}
