/** sl_monitor_st: per-CPU rate-limit state and event counters (one entry, key 0: __u32 → struct sl_monitor_state per CPU). */
import type { Config } from '../config/config.js';
import { MapDef } from './map.js';

interface MonitorState { sent: bigint; rate_limited: bigint; ring_full: bigint }

export const MONITOR_STATE_MAP = new MapDef<number, MonitorState[]>({
  name: 'sl_monitor_st',
  key: { name: '__u32' },
  value: { name: 'sl_monitor_state', fields: { sent: true, rate_limited: true, ring_full: true } },
});

export interface EventCounters {
  sent: number;
  rateLimited: number;
  ringFull: number;
}

/** Events sent and lost, summed over CPUs. */
export function readEventCounters(cfg: Pick<Config, 'pinRoot'>): EventCounters {
  return MONITOR_STATE_MAP.with(cfg, (m) => {
    const perCpu = m.lookup(0) ?? [];
    const sum = (f: (v: MonitorState) => bigint) => Number(perCpu.reduce((a, v) => a + f(v), 0n));
    return { sent: sum((v) => v.sent), rateLimited: sum((v) => v.rate_limited), ringFull: sum((v) => v.ring_full) };
  });
}
