/**
 * The datapath's per-reason counters (sl_metrics), summed over CPUs. Reason and
 * direction names come from the map's BTF enums (enum sl_reason, enum sl_dir).
 */
import type { Config } from '../config/config.js';
import { openMap } from './loader.js';

export interface MetricRow {
  reason: string;
  direction: string;
  drop: boolean;
  packets: number;
  bytes: number;
}

interface Key { reason: string | number; dir: string | number }
interface Val { packets: bigint; bytes: bigint }

/** "SL_REASON_DROP_SPOOFED_IP" -> "drop_spoofed_ip"; "SL_DIR_EGRESS" -> "egress". */
export function enumWord(v: string | number, prefix: string): string {
  return typeof v === 'number' ? `${prefix.toLowerCase()}${v}` : v.replace(new RegExp(`^${prefix}`), '').toLowerCase();
}

export function readMetrics(cfg: Pick<Config, 'pinRoot'>): MetricRow[] {
  const m = openMap<Key, Val[]>(cfg, 'sl_metrics');
  try {
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
  } finally {
    m.close();
  }
}

/** Packets counted for one reason (all directions). */
export function metricPackets(rows: MetricRow[], reason: string): number {
  return rows.filter((r) => r.reason === reason).reduce((a, r) => a + r.packets, 0);
}
