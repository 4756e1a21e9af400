/**
 * Machine-wide CPU busy time from /proc/stat, for CPU time per gigabyte: every CPU's
 * user + nice + system + irq + softirq + steal (guest time is inside user already; idle
 * and iowait are not busy). The parser is pure and unit-tested.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** The aggregate "cpu" line of /proc/stat, in clock ticks (USER_HZ). */
export interface CpuTicks {
  user: number;
  nice: number;
  system: number;
  idle: number;
  iowait: number;
  irq: number;
  softirq: number;
  steal: number;
}

const FIELDS = ['user', 'nice', 'system', 'idle', 'iowait', 'irq', 'softirq', 'steal'] as const;

/**
 * The "cpu " line (all CPUs together) of /proc/stat. Kernels older than 2.6.11 print fewer
 * columns; the missing ones (steal, softirq, irq) count as 0. Throws when there is no such
 * line or it is not numbers.
 */
export function parseProcStat(text: string): CpuTicks {
  const line = text.split('\n').find((l) => /^cpu\s/.test(l));
  if (!line) throw new Error(`/proc/stat: no aggregate "cpu" line in: ${text.slice(0, 120) || '(empty)'}`);
  const cols = line.trim().split(/\s+/).slice(1);
  if (cols.length < 4 || cols.some((c) => !/^\d+$/.test(c))) throw new Error(`/proc/stat: unexpected cpu line: ${line}`);
  const out = {} as CpuTicks;
  FIELDS.forEach((f, i) => { out[f] = Number(cols[i] ?? 0); });
  return out;
}

/** Busy ticks: user + nice + system + irq + softirq + steal. */
export function busyTicks(t: CpuTicks): number {
  return t.user + t.nice + t.system + t.irq + t.softirq + t.steal;
}

/** USER_HZ, the unit of /proc/stat (100 on every usual build; asked of getconf once). */
let hz: number | undefined;
export function clockTicksPerSecond(): number {
  if (hz === undefined) {
    const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
    const n = Number((r.stdout ?? '').trim());
    hz = r.status === 0 && Number.isInteger(n) && n > 0 ? n : 100;
  }
  return hz;
}

/** Seconds of CPU every CPU of the machine has been busy since boot (a monotonic clock for differences). */
export function busySeconds(): number {
  return busyTicks(parseProcStat(readFileSync('/proc/stat', 'utf8'))) / clockTicksPerSecond();
}

/** CPU seconds per gigabyte (10⁹ bytes) moved; null without a positive byte count or a CPU time. */
export function cpuSecondsPerGb(cpuS: number | null, bytes: number | null): number | null {
  if (cpuS === null || bytes === null || !Number.isFinite(cpuS) || !Number.isFinite(bytes) || bytes <= 0 || cpuS < 0) return null;
  return cpuS / (bytes / 1e9);
}
