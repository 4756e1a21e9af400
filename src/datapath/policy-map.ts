/**
 * sl_policy as the agent writes it: made equal to the compiled entries (src/policy/compile.ts)
 * by reading it back and writing the difference. New and changed entries go in before stale
 * ones go, so a flow both the old and the new policies allow is never dropped in between.
 */
import type { Config } from '../config/config.js';
import { keyString, type PolicyKey, type PolicyValue } from '../policy/compile.js';
import { openMap } from './loader.js';
import { applyMapDiff } from './map-diff.js';

export interface PolicyEntry {
  key: PolicyKey;
  value: PolicyValue;
}

export interface PolicyMapChange {
  /** Entries added or rewritten. */
  written: number;
  /** Stale entries deleted. */
  removed: number;
}

/** Writes `entries` into sl_policy, touching nothing else (for keys no other entry shares). */
export function writePolicyEntries(cfg: Pick<Config, 'pinRoot'>, entries: ReadonlyMap<string, PolicyEntry>): void {
  const m = openMap<PolicyKey, PolicyValue>(cfg, 'sl_policy');
  try {
    for (const e of entries.values()) m.update(e.key, e.value);
  } finally {
    m.close();
  }
}

/** Makes sl_policy hold exactly `want` (keyed by `keyString`); returns what it changed. */
export function syncPolicyMap(cfg: Pick<Config, 'pinRoot'>, want: ReadonlyMap<string, PolicyEntry>): PolicyMapChange {
  const m = openMap<PolicyKey, PolicyValue>(cfg, 'sl_policy');
  try {
    const have = new Map<string, PolicyEntry>();
    for (const [key, value] of m.entries()) have.set(keyString(key), { key, value });
    const d = applyMapDiff(have, want, (a, b) => a.value.policy === b.value.policy && a.value.flags === b.value.flags, {
      write: (_, e) => m.update(e.key, e.value),
      remove: (_, e) => m.delete(e.key),
    });
    return { written: d.added.length + d.changed.length, removed: d.removed.length };
  } finally {
    m.close();
  }
}
