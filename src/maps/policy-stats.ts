/** sl_policy_st: per-CPU verdicts per policy and direction (struct sl_policy_stats_key → struct sl_metrics_val per CPU). */
import type { Config } from '../config/config.js';
import { MapDef } from './map.js';

export interface PolicyStatsKey { policy: number; dir: number; allowed: number }
export interface Counts { packets: bigint; bytes: bigint }

export const POLICY_STATS_MAP = new MapDef<PolicyStatsKey, Counts[]>({
  name: 'sl_policy_st',
  key: { name: 'sl_policy_stats_key', fields: { policy: true, dir: true, allowed: true } },
  value: { name: 'sl_metrics_val', fields: { packets: true, bytes: true } },
});

export interface PolicyStatsRow extends PolicyStatsKey {
  /** Summed over CPUs. */
  packets: number;
  bytes: number;
}

/** Every entry, summed over CPUs. */
export function readPolicyStats(cfg: Pick<Config, 'pinRoot'>): PolicyStatsRow[] {
  return POLICY_STATS_MAP.with(cfg, (m) => [...m.entries()].map(([k, v]) => ({
    policy: k.policy, dir: k.dir, allowed: k.allowed,
    packets: Number(v.reduce((a, x) => a + x.packets, 0n)),
    bytes: Number(v.reduce((a, x) => a + x.bytes, 0n)),
  })));
}
