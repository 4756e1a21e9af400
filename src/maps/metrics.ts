/**
 * sl_metrics: the datapath's per-CPU packet and byte counters by reason and direction
 * (struct sl_metrics_key → struct sl_metrics_val), summed over CPUs. Reason and direction
 * names come from the map's BTF enums (enum sl_reason, enum sl_dir).
 */
import type { Config } from '../config/config.js';
import { MapDef } from './map.js';

export interface MetricRow {
  reason: string;
  direction: string;
  drop: boolean;
  packets: number;
  bytes: number;
}

/** Enum members decode to their names (SL_REASON_…), or numbers BTF has no name for. */
export interface MetricsKey { reason: string | number; dir: string | number }
export interface MetricsValue { packets: bigint; bytes: bigint }

export const METRICS_MAP = new MapDef<MetricsKey, MetricsValue[]>({
  name: 'sl_metrics',
  key: { name: 'sl_metrics_key', fields: { reason: true, dir: true } },
  value: { name: 'sl_metrics_val', fields: { packets: true, bytes: true } },
  watchFill: true,
});

/** "SL_REASON_DROP_SPOOFED_IP" -> "drop_spoofed_ip"; "SL_DIR_EGRESS" -> "egress". */
export function enumWord(v: string | number, prefix: string): string {
  return typeof v === 'number' ? `${prefix.toLowerCase()}${v}` : v.replace(new RegExp(`^${prefix}`), '').toLowerCase();
}

export function readMetrics(cfg: Pick<Config, 'pinRoot'>): MetricRow[] {
  return METRICS_MAP.with(cfg, (m) => {
    const rows: MetricRow[] = [];
    for (const [k, perCpu] of m.entries()) {
      const reason = enumWord(k.reason, 'SL_REASON_');
      rows.push({
        reason,
        direction: enumWord(k.dir, 'SL_DIR_'),
        drop: reason.startsWith('drop_'),
        packets: Number(perCpu.reduce((a, v) => a + v.packets, 0n)),
        bytes: Number(perCpu.reduce((a, v) => a + v.bytes, 0n)),
      });
    }
    return rows.sort((a, b) => a.reason.localeCompare(b.reason) || a.direction.localeCompare(b.direction));
  });
}

/** Packets counted for one reason (all directions). */
export function metricPackets(rows: MetricRow[], reason: string): number {
  return rows.filter((r) => r.reason === reason).reduce((a, r) => a + r.packets, 0);
}
