/**
 * `scripts/bench`: the same-node benchmark. Markdown table on stdout, progress on
 * stderr, `--json FILE` for every raw sample. Exit 0 on success, 1 when the run failed,
 * 2 on a usage error, 130/143 when interrupted (after cleaning up).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { allowedCpus, machineInfo } from './machine.js';
import { parseBenchArgs, UsageError, USAGE, type BenchOptions } from './options.js';
import { chooseCpus, SameNodeBench, SLUICE_BIN, type Samples, type Setup } from './same-node.js';
import { renderMarkdown, summarize, type Figure, type MachineInfo } from './stats.js';
import type { Cpus } from './tools.js';

const log = (line: string) => process.stderr.write(`${line}\n`);

const NEEDED = ['ip', 'nsenter', 'setpriv', 'taskset', 'iperf3', 'sockperf', 'ss', 'ping', 'sysctl'];

function missingTools(): string[] {
  return NEEDED.filter((t) => spawnSync('sh', ['-c', `command -v ${t}`], { stdio: 'ignore' }).status !== 0);
}

export interface JsonReport {
  benchmark: 'sluice same-node';
  schema: 1;
  startedAt: string;
  finishedAt: string;
  ok: boolean;
  error?: string;
  options: { repeats: number; durationS: number; smoke: boolean };
  machine: MachineInfo;
  cpus: Cpus;
  setup: Setup | null;
  samples: Samples;
  medians: Record<string, { unit: string; better: string; baseline: number | null; sluice: number | null; ratio: number | null; relative: number | null }>;
  figures: Figure[];
}

function medians(figures: readonly Figure[]): JsonReport['medians'] {
  const out: JsonReport['medians'] = {};
  for (const f of figures) {
    out[f.key] = { unit: f.unit, better: f.better, baseline: f.baseline, sluice: f.sluice, ratio: f.ratio, relative: f.relative };
  }
  return out;
}

async function run(o: BenchOptions): Promise<number> {
  if (process.getuid?.() !== 0) {
    log('bench: needs root (network namespaces, BPF)');
    return 1;
  }
  if (!existsSync(SLUICE_BIN) || !existsSync(new URL('../cli/main.js', import.meta.url))) {
    log('bench: dist/ is not built: run `npx tsc -p tsconfig.json` first');
    return 1;
  }
  const missing = missingTools();
  if (missing.length) {
    log(`bench: missing tools: ${missing.join(', ')} (apt-get install iproute2 iperf3 sockperf util-linux iputils-ping procps)`);
    return 1;
  }
  const { cpus, warning } = chooseCpus(allowedCpus());
  if (warning) log(`bench: warning: ${warning}`);
  const machine = machineInfo();
  const startedAt = new Date().toISOString();
  const samples: Samples = { iperf3: [], sockperf: [] };
  let setup: Setup | null = null;

  const bench = new SameNodeBench(log);
  try {
    bench.begin();
  } catch (e) {
    log(`bench: ${(e as Error).message}`);
    return 1;
  }

  // From here on everything we made is removed on the way out, whatever the way.
  let interrupted = false;
  const onSignal = (sig: NodeJS.Signals) => {
    if (interrupted) return;
    interrupted = true;
    log(`\nbench: ${sig}: stopping the running tools and cleaning up`);
    const problems = bench.teardownSync();
    for (const p of problems) log(`bench: cleanup: ${p}`);
    process.exit(sig === 'SIGINT' ? 130 : sig === 'SIGHUP' ? 129 : 143);
  };
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, onSignal);
  process.on('uncaughtException', (e) => {
    log(`bench: internal error: ${e.stack ?? e.message}`);
    if (!interrupted) {
      interrupted = true;
      for (const p of bench.teardownSync()) log(`bench: cleanup: ${p}`);
    }
    process.exit(1);
  });

  let error: Error | undefined;
  try {
    log(`bench: ${o.smoke ? 'smoke run: ' : ''}${o.repeats} repeat(s) × ${o.durationS} s; ${machine.kernel}, ${machine.cpuModel}, ${machine.nproc} CPUs`);
    setup = await bench.setup();
    await bench.measure({ repeats: o.repeats, durationS: o.durationS, cpus }, samples);
  } catch (e) {
    error = e as Error;
  } finally {
    log('bench: cleaning up (sluice node reset, namespaces, pins, temp dir)');
    const problems = bench.teardownSync();
    for (const p of problems) log(`bench: cleanup: ${p}`);
    if (problems.length && !error) error = new Error('cleanup was incomplete');
  }

  const figures = summarize(samples.iperf3, samples.sockperf);
  if (o.json) {
    const report: JsonReport = {
      benchmark: 'sluice same-node', schema: 1, startedAt, finishedAt: new Date().toISOString(),
      ok: !error, ...(error ? { error: error.message } : {}),
      options: { repeats: o.repeats, durationS: o.durationS, smoke: o.smoke },
      machine, cpus, setup, samples, medians: medians(figures), figures,
    };
    writeFileSync(o.json, `${JSON.stringify(report, null, 2)}\n`);
    log(`bench: wrote ${o.json}`);
  }
  if (error) {
    log(`bench: failed: ${error.message}`);
    if (process.env.SLUICE_DEBUG) log(error.stack ?? '');
    return 1;
  }
  process.stdout.write(renderMarkdown({ machine, repeats: o.repeats, durationS: o.durationS, smoke: o.smoke, mtu: setup?.mtu ?? null }, figures));
  return 0;
}

export async function main(argv: readonly string[]): Promise<number> {
  // A closed pipe (`scripts/bench 2>&1 | head`) must not kill the run before it cleans up.
  process.stdout.on('error', () => {});
  process.stderr.on('error', () => {});
  if (argv[0] === 'policy') return (await import('./policy-run.js')).policyMain(argv.slice(1));
  if (argv[0] === 'dataplanes') return (await import('./dataplanes/run.js')).dataplanesMain(argv.slice(1));
  if (argv[0] === 'endpoints') return (await import('./endpoints-run.js')).endpointsMain(argv.slice(1));
  let o: BenchOptions;
  try {
    o = parseBenchArgs(argv);
  } catch (e) {
    if (e instanceof UsageError) {
      log(`bench: ${e.message}\n\n${USAGE}`);
      return 2;
    }
    throw e;
  }
  if (o.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  return run(o);
}

process.exitCode = await main(process.argv.slice(2));
