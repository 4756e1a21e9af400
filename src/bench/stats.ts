/**
 * The benchmark's numbers: samples, medians, sluice/baseline ratios and the markdown
 * report. Pure (no processes, no files) so the unit tests cover all of it.
 */

/** What a run measured: the bare veth pair, or two sluice pods on one node. */
export type Target = 'baseline' | 'sluice';
export const TARGETS: readonly Target[] = ['baseline', 'sluice'];

/** One iperf3 run (one TCP stream, client and server on different CPUs). */
export interface IperfSample {
  repeat: number;
  target: Target;
  /** Receiver-side goodput, Gbit/s: the figure reported. */
  gbps: number;
  /** Sender-side rate, Gbit/s. */
  sentGbps: number;
  /** Bytes the receiver got (end.sum_received.bytes); null when iperf3 did not say. */
  receivedBytes: number | null;
  retransmits: number | null;
  /** Test length iperf3 measured, seconds. */
  seconds: number;
  cpuHostPct: number | null;
  cpuRemotePct: number | null;
  /** The client's per-interval rates (one per second), Gbit/s. */
  intervalsGbps: number[];
}

/** One sockperf TCP ping-pong run (both ends on one CPU); times are round trips in µs. */
export interface SockperfSample {
  repeat: number;
  target: Target;
  p50Us: number;
  p99Us: number;
  avgUs: number | null;
  minUs: number | null;
  maxUs: number | null;
  observations: number | null;
  /** The measured part of the run (sockperf excludes its warm-up), seconds. */
  validSeconds: number | null;
  /** Every percentile sockperf printed, by percentile ("99.9" → µs). */
  percentiles: Record<string, number>;
}

export type FigureKey = 'throughput' | 'rttP50' | 'rttP99';

export interface Figure {
  key: FigureKey;
  label: string;
  unit: string;
  better: 'higher' | 'lower';
  /** Medians over the repeats; null when no run produced a sample. */
  baseline: number | null;
  sluice: number | null;
  /** sluice / baseline of the medians. */
  ratio: number | null;
  /**
   * How much of the veth pair's performance sluice keeps: the ratio for
   * higher-is-better figures, its inverse for latencies (1 = as good as the veth pair).
   */
  relative: number | null;
  samples: Record<Target, number[]>;
  /**
   * sluice / baseline within each repeat (the two ran back to back, so a change in
   * the machine's background load between repeats cancels out), in repeat order.
   */
  paired: number[];
  /** The median of `paired`: a check on `ratio` when the load drifted during the run. */
  pairedMedian: number | null;
}

export function median(xs: readonly number[]): number {
  if (xs.length === 0) throw new RangeError('median of no samples');
  if (xs.some((x) => !Number.isFinite(x))) throw new RangeError(`median of non-finite samples: ${xs.join(', ')}`);
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** sluice / baseline; null when either is missing or the baseline is not positive. */
export function ratio(sluice: number | null, baseline: number | null): number | null {
  if (sluice === null || baseline === null || !Number.isFinite(sluice) || !Number.isFinite(baseline) || baseline <= 0) return null;
  return sluice / baseline;
}

/** The share of the baseline's performance that sluice keeps (see Figure.relative). */
export function relative(r: number | null, better: 'higher' | 'lower'): number | null {
  if (r === null) return null;
  if (better === 'higher') return r;
  return r > 0 ? 1 / r : null;
}

const FIGURES: readonly { key: FigureKey; label: string; unit: string; better: 'higher' | 'lower' }[] = [
  { key: 'throughput', label: 'TCP throughput, 1 stream', unit: 'Gbit/s', better: 'higher' },
  { key: 'rttP50', label: 'TCP request/response RTT p50', unit: 'µs', better: 'lower' },
  { key: 'rttP99', label: 'TCP request/response RTT p99', unit: 'µs', better: 'lower' },
];

function valuesOf(key: FigureKey, target: Target, iperf: readonly IperfSample[], sock: readonly SockperfSample[]): { repeat: number; value: number }[] {
  if (key === 'throughput') return iperf.filter((s) => s.target === target).map((s) => ({ repeat: s.repeat, value: s.gbps }));
  const pick = key === 'rttP50' ? (s: SockperfSample) => s.p50Us : (s: SockperfSample) => s.p99Us;
  return sock.filter((s) => s.target === target).map((s) => ({ repeat: s.repeat, value: pick(s) }));
}

/** sluice / baseline per repeat that has both (first sample of each target in a repeat). */
export function pairedRatios(baseline: readonly { repeat: number; value: number }[], sluice: readonly { repeat: number; value: number }[]): number[] {
  const out: number[] = [];
  const seen = new Set<number>();
  for (const b of baseline) {
    if (seen.has(b.repeat)) continue;
    seen.add(b.repeat);
    const s = sluice.find((x) => x.repeat === b.repeat);
    const r = s ? ratio(s.value, b.value) : null;
    if (r !== null) out.push(r);
  }
  return out;
}

/** Medians per target and the ratios, one Figure per reported number. */
export function summarize(iperf: readonly IperfSample[], sock: readonly SockperfSample[]): Figure[] {
  return FIGURES.map((f) => {
    const b = valuesOf(f.key, 'baseline', iperf, sock);
    const sl = valuesOf(f.key, 'sluice', iperf, sock);
    const samples = { baseline: b.map((x) => x.value), sluice: sl.map((x) => x.value) };
    const baseline = samples.baseline.length ? median(samples.baseline) : null;
    const sluice = samples.sluice.length ? median(samples.sluice) : null;
    const r = ratio(sluice, baseline);
    const paired = pairedRatios(b, sl);
    return { ...f, baseline, sluice, ratio: r, relative: relative(r, f.better), samples, paired, pairedMedian: paired.length ? median(paired) : null };
  });
}

/** Numbers for people: 3 significant digits at least, no exponent, '–' for missing. */
export function fmt(x: number | null, digits = 3): string {
  if (x === null || !Number.isFinite(x)) return '–';
  const abs = Math.abs(x);
  if (abs >= 100) return x.toFixed(0);
  if (abs >= 10) return x.toFixed(1);
  return x.toFixed(Math.max(digits - 1, 0));
}

export function fmtRatio(x: number | null): string {
  return x === null || !Number.isFinite(x) ? '–' : x.toFixed(3);
}

export interface MachineInfo {
  kernel: string;
  cpuModel: string;
  nproc: number;
  node: string;
  iperf3: string;
  sockperf: string;
}

export interface ReportHeader {
  machine: MachineInfo;
  repeats: number;
  durationS: number;
  smoke: boolean;
  mtu: number | null;
}

/** The threshold the report checks each figure against (share of the veth pair kept). */
export const GOAL = 0.95;

/** The markdown report printed on stdout. */
export function renderMarkdown(h: ReportHeader, figures: readonly Figure[]): string {
  const m = h.machine;
  const lines: string[] = [];
  lines.push(`## sluice same-node benchmark${h.smoke ? ' (smoke run: numbers are not meaningful)' : ''}`);
  lines.push('');
  lines.push(`Machine: Linux ${m.kernel}, ${m.cpuModel}, ${m.nproc} CPU${m.nproc === 1 ? '' : 's'}; node ${m.node}, ${m.iperf3}, ${m.sockperf}.`);
  lines.push(
    `Method: ${h.repeats} repeat${h.repeats === 1 ? '' : 's'} of ${h.durationS} s per run, baseline and sluice interleaved; medians.` +
      ` Baseline: two network namespaces joined by one bare veth pair${h.mtu ? ` (MTU ${h.mtu}, as the pods)` : ''}.` +
      ' Throughput: iperf3, one TCP stream, client and server pinned to different CPUs.' +
      ' RTT: sockperf TCP ping-pong round trip, both ends pinned to one CPU.',
  );
  lines.push('');
  lines.push('| figure | baseline (veth pair) | sluice | ratio (sluice / baseline) |');
  lines.push('| --- | ---: | ---: | ---: |');
  for (const f of figures) {
    const arrow = f.better === 'higher' ? 'higher is better' : 'lower is better';
    lines.push(`| ${f.label} (${f.unit}; ${arrow}) | ${fmt(f.baseline)} | ${fmt(f.sluice)} | ${fmtRatio(f.ratio)} |`);
  }
  lines.push('');
  for (const f of figures) {
    const rel = f.relative;
    const verdict = rel === null ? 'no result' : rel >= GOAL ? `meets ≥ ${GOAL}` : `below ${GOAL}`;
    const list = (xs: readonly number[], f: (x: number) => string) => xs.map(f).join(', ') || '–';
    lines.push(
      `- ${f.label}: sluice performs at ${fmtRatio(rel)}× the veth pair (${verdict}).` +
        ` Samples: baseline ${list(f.samples.baseline, (x) => fmt(x))}; sluice ${list(f.samples.sluice, (x) => fmt(x))};` +
        ` ratio per repeat ${list(f.paired, fmtRatio)} (median ${fmtRatio(f.pairedMedian)}).`,
    );
  }
  return `${lines.join('\n')}\n`;
}
