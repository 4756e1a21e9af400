/**
 * The endpoint-creation benchmark's pure parts: its command line, the summary of its
 * samples (p50/p99 per plugin and mode, sluice as a ratio of the reference `bridge`
 * plugin) and the markdown report. The rig that runs the plugins is endpoints-run.ts.
 */
import { parseArgs } from 'node:util';
import { UsageError } from './options.js';
import { fmt, fmtRatio } from './stats.js';

export interface EndpointBenchArgs {
  count: number;
  parallel: number;
  rounds: number;
  json: string | undefined;
  smoke: boolean;
  help: boolean;
}

export const ENDPOINT_USAGE = `usage: scripts/bench endpoints [--count N] [--parallel P] [--rounds R] [--json FILE] [--smoke]

Endpoint creation time: CNI ADD of sluice's plugin (against its agent on a lab node)
and of the reference CNI \`bridge\` plugin with host-local IPAM (containernetworking-
plugins), exec'd as a runtime does, into fresh pod namespaces: N one after another, then
N with P in flight at a time; then DEL of all. p50 and p99 of the ADDs' wall time,
rounds interleaved (sluice and bridge alternate which goes first).

  --count N      pods per phase (default 32)
  --parallel P   ADDs in flight in the parallel phase (default 16)
  --rounds R     rounds (default 3)
  --json FILE    every sample, the summary and the machine
  --smoke        check the harness: 1 round of 4 pods, 2 in flight
  -h, --help     this text
`;

function positiveInt(flag: string, v: string | undefined, dflt: number, max: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < 1 || n > max) throw new UsageError(`${flag}: expected an integer from 1 to ${max}, got '${v}'`);
  return n;
}

export function parseEndpointBenchArgs(argv: readonly string[]): EndpointBenchArgs {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv], allowPositionals: false, strict: true,
      options: {
        count: { type: 'string' }, parallel: { type: 'string' }, rounds: { type: 'string' },
        json: { type: 'string' }, smoke: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const v = parsed.values;
  const smoke = v.smoke === true;
  const count = positiveInt('--count', v.count, smoke ? 4 : 32, 250);
  const parallel = positiveInt('--parallel', v.parallel, smoke ? 2 : 16, 64);
  if (parallel > count) throw new UsageError(`--parallel ${parallel} is more than --count ${count}`);
  return { count, parallel, rounds: positiveInt('--rounds', v.rounds, smoke ? 1 : 3, 50), json: v.json, smoke, help: v.help === true };
}

export type Plugin = 'sluice' | 'bridge';
export type Mode = 'sequential' | 'parallel';
export const PLUGINS: readonly Plugin[] = ['sluice', 'bridge'];
export const MODES: readonly Mode[] = ['sequential', 'parallel'];

export interface EndpointSample {
  plugin: Plugin;
  mode: Mode;
  round: number;
  /** Wall time of one CNI ADD (plugin exec to exit), ms. */
  ms: number;
}

/** The p-th percentile (nearest rank) of `xs`; NaN for none. */
export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

export interface EndpointFigure {
  mode: Mode;
  n: number;
  sluice: { p50: number; p99: number };
  bridge: { p50: number; p99: number };
  /** sluice / bridge: below 1 is faster than the reference plugin. */
  ratioP50: number;
  ratioP99: number;
}

export function summarizeEndpoints(samples: readonly EndpointSample[]): EndpointFigure[] {
  return MODES.map((mode) => {
    const of = (plugin: Plugin) => samples.filter((s) => s.plugin === plugin && s.mode === mode).map((s) => s.ms);
    const [sl, br] = [of('sluice'), of('bridge')];
    const fig = (xs: number[]) => ({ p50: percentile(xs, 50), p99: percentile(xs, 99) });
    const [s, b] = [fig(sl), fig(br)];
    return { mode, n: Math.min(sl.length, br.length), sluice: s, bridge: b, ratioP50: s.p50 / b.p50, ratioP99: s.p99 / b.p99 };
  });
}

export function renderEndpointMarkdown(figures: readonly EndpointFigure[], h: { kernel: string; cpu: string; count: number; parallel: number; rounds: number }): string {
  const rows = figures.map((f) => `| ${f.mode === 'parallel' ? `${h.parallel} in parallel` : 'one at a time'} | ${f.n} | ${fmt(f.sluice.p50, 1)} / ${fmt(f.bridge.p50, 1)} | ${fmtRatio(f.ratioP50)} | ${fmt(f.sluice.p99, 1)} / ${fmt(f.bridge.p99, 1)} | ${fmtRatio(f.ratioP99)} |`);
  return [
    `Endpoint creation (CNI ADD wall time), ${h.kernel}, ${h.cpu}; ${h.rounds} round(s) of ${h.count} pods per phase.`,
    '',
    '| phase | ADDs each | p50 ms sluice / bridge | ratio | p99 ms sluice / bridge | ratio |',
    '| --- | ---: | ---: | ---: | ---: | ---: |',
    ...rows,
    '',
  ].join('\n');
}
