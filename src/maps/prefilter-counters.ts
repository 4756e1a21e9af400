/** sl_prefilter_ct: per-CPU packets and bytes dropped per prefilter rule (struct sl_prefilter_ct_key → struct sl_prefilter_ct per CPU). */
import type { Config } from '../config/config.js';
import { MapDef } from './map.js';

interface CounterKey { id: number }
interface CounterValue { packets: bigint; bytes: bigint }

export const PREFILTER_COUNTERS_MAP = new MapDef<CounterKey, CounterValue[]>({
  name: 'sl_prefilter_ct',
  key: { name: 'sl_prefilter_ct_key', fields: { id: true } },
  value: { name: 'sl_prefilter_ct', fields: { packets: true, bytes: true } },
});

export interface Counters {
  packets: number;
  bytes: number;
}

/** The counters summed over CPUs, by rule id. */
export function readPrefilterCounters(cfg: Pick<Config, 'pinRoot'>): Map<number, Counters> {
  return PREFILTER_COUNTERS_MAP.with(cfg, (m) => {
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

/** The rule ids that have counters (nothing decoded but the keys). */
export function readPrefilterCounterIds(cfg: Pick<Config, 'pinRoot'>): number[] {
  return PREFILTER_COUNTERS_MAP.with(cfg, (m) => [...m.keys()].map((k) => k.id));
}

export function deletePrefilterCounters(cfg: Pick<Config, 'pinRoot'>, ids: Iterable<number>): void {
  PREFILTER_COUNTERS_MAP.with(cfg, (m) => {
    for (const id of ids) m.delete({ id });
  });
}
