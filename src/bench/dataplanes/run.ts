/**
 * `scripts/bench dataplanes`: builds every target, measures them in interleaved rounds,
 * reports. Markdown on stdout, progress on stderr, --json and --svg files. Exit 0 on
 * success, 1 when the run failed, 2 on a usage error, 130/143 when interrupted.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { busySeconds, cpuSecondsPerGb } from '../cpustat.js';
import { buildCrr, CRR_PORT, CRR_REQUEST, CRR_RESPONSE, CRR_TIMEOUT_MS, runCrr } from '../crr.js';
import { allowedCpus, machineInfo } from '../machine.js';
import { UsageError } from '../options.js';
import { chooseCpus, SLUICE_BIN } from '../same-node.js';
import { fmt } from '../stats.js';
import { runIperf3, runSockperf } from '../tools.js';
import { DATAPLANES_USAGE, parseDataplanesArgs, type DataplanesOptions } from './options.js';
import { comparisons, renderMarkdown, renderSvg, summarize, type Header, type Samples } from './report.js';
import { DataplanesRig, type Built, type RuleCounters } from './rig.js';
import { measurementOrder } from './targets.js';

const log = (line: string) => process.stderr.write(`${line}\n`);
const NEEDED = ['ip', 'nsenter', 'setpriv', 'taskset', 'iperf3', 'sockperf', 'ss', 'ping', 'sysctl', 'iptables', 'iptables-restore', 'bridge', 'clang'];

function loadAverage(): string | null {
  try {
    return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(', ');
  } catch {
    return null;
  }
}

async function run(o: DataplanesOptions): Promise<number> {
  if (process.getuid?.() !== 0) {
    log('bench dataplanes: needs root (network namespaces, iptables in them, sluice labs)');
    return 1;
  }
  if (!existsSync(SLUICE_BIN) || !existsSync(new URL('../../cli/main.js', import.meta.url))) {
    log('bench dataplanes: dist/ is not built: run `npx tsc -p tsconfig.json` first');
    return 1;
  }
  const missing = NEEDED.filter((t) => spawnSync('sh', ['-c', `command -v ${t}`], { stdio: 'ignore' }).status !== 0);
  if (missing.length) {
    log(`bench dataplanes: missing tools: ${missing.join(', ')}`);
    return 1;
  }
  const { cpus, warning } = chooseCpus(allowedCpus());
  if (warning) log(`bench dataplanes: warning: ${warning}`);
  const machine = machineInfo();
  const startedAt = new Date().toISOString();
  const loadBefore = loadAverage();
  const samples: Samples = { iperf3: [], sockperf: [], crr: [] };
  const rig = new DataplanesRig(log);
  try {
    rig.begin();
  } catch (e) {
    log(`bench dataplanes: ${(e as Error).message}`);
    return 1;
  }
  let interrupted = false;
  const onSignal = (sig: NodeJS.Signals) => {
    if (interrupted) return;
    interrupted = true;
    log(`\nbench dataplanes: ${sig}: stopping the running tools and cleaning up`);
    for (const p of rig.teardownSync()) log(`bench dataplanes: cleanup: ${p}`);
    process.exit(sig === 'SIGINT' ? 130 : sig === 'SIGHUP' ? 129 : 143);
  };
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, onSignal);
  process.on('uncaughtException', (e) => {
    log(`bench dataplanes: internal error: ${e.stack ?? e.message}`);
    if (!interrupted) {
      interrupted = true;
      for (const p of rig.teardownSync()) log(`bench dataplanes: cleanup: ${p}`);
    }
    process.exit(1);
  });

  const built: Built[] = [];
  const counters: Record<string, RuleCounters | null> = {};
  const masq: Record<string, RuleCounters> = {};
  let error: Error | undefined;
  try {
    log(`bench dataplanes: ${o.smoke ? 'smoke run: ' : ''}${o.repeats} round(s) × ${o.durationS} s; targets ${o.targets.map((t) => t.name).join(', ')}; ${machine.kernel}, ${machine.nproc} CPUs, load ${loadBefore ?? '?'}`);
    // The labs start in the background while the namespace targets are built.
    // The connection-rate tool first: a compile error ends the run before anything is built.
    const crrBin = await buildCrr(rig.procs, rig.workDir());
    const modes = [...new Set(o.targets.filter((t) => t.builder === 'sluice').map((t) => t.mode!))];
    const policyTargets = o.targets.filter((t) => t.builder === 'sluice' && t.rules !== undefined);
    const labs = Promise.all(modes.map(async (m) => [m, await rig.labUp(m, m === 'direct' ? policyTargets.length : 0)] as const));
    labs.catch(() => {}); // awaited below; not unhandled meanwhile
    const byName = new Map<string, Built>();
    for (const t of o.targets.filter((x) => x.builder === 'netns')) byName.set(t.name, await rig.buildNetns(t, o.rules));
    const labByMode = new Map(await labs);
    const policyServers = policyTargets.length ? await rig.applyRuleSets(policyTargets, labByMode.get('direct')!) : new Map();
    for (const t of o.targets.filter((x) => x.builder === 'sluice')) byName.set(t.name, await rig.sluiceTarget(t, labByMode.get(t.mode!)!, policyServers.get(t.name)));
    built.push(...o.targets.map((t) => byName.get(t.name)!));

    if (o.warmupS > 0) {
      log(`bench dataplanes: warm-up: one iperf3 run of ${o.warmupS} s per target, not counted`);
      for (const b of built) {
        const s = await runIperf3(rig.procs, b.pair, o.warmupS, cpus, 1, busySeconds);
        log(`bench dataplanes: [warm-up] iperf3 ${b.target}: ${fmt(s.gbps)} Gbit/s (not counted)`);
      }
    }

    for (let r = 1; r <= o.repeats; r++) {
      const tag = `[round ${r}/${o.repeats}]`;
      // Compared targets back to back, the order reversed every other round (targets.ts).
      const order = measurementOrder(o.targets, r).map((t) => byName.get(t.name)!);
      for (const streams of o.streams) {
        for (const b of order) {
          const s = await runIperf3(rig.procs, b.pair, o.durationS, cpus, streams, busySeconds);
          const cpuPerGb = cpuSecondsPerGb(s.cpuBusyS, s.receivedBytes);
          samples.iperf3.push({ round: r, target: b.target, streams, ...s, cpuPerGb });
          log(`bench dataplanes: ${tag} iperf3 -P ${streams} ${b.target}: ${fmt(s.gbps)} Gbit/s (${s.retransmits ?? '?'} retransmits), ${fmt(cpuPerGb)} CPU-s/GB`);
        }
      }
      for (const b of order) {
        const s = await runSockperf(rig.procs, b.pair, o.durationS, cpus);
        samples.sockperf.push({ round: r, target: b.target, ...s });
        log(`bench dataplanes: ${tag} sockperf ${b.target}: p50 ${fmt(s.p50Us)} µs, p99 ${fmt(s.p99Us)} µs`);
      }
      for (const b of order) {
        const s = await runCrr(rig.procs, crrBin, b.pair, o.durationS, cpus);
        samples.crr.push({ round: r, target: b.target, ...s });
        const errs = s.errors ? `; ${s.errors} failed (first: ${s.firstError ?? '?'})` : '';
        log(`bench dataplanes: ${tag} new connections ${b.target}: ${s.connsPerS === null ? 'NONE completed' : `${fmt(s.connsPerS)}/s`} (${s.transactions} in ${s.seconds.toFixed(2)} s${errs})`);
      }
    }
    for (const b of built) {
      const mq = await rig.masqueradeCounters(b);
      if (mq) {
        masq[b.target] = mq;
        log(`bench dataplanes: ${b.target}: the MASQUERADE rule counted ${mq.packets} packets (the first of each flow)`);
        if (mq.packets === 0) throw new Error(`${b.target}: the MASQUERADE rule counted no packet: the traffic was not translated`);
      }
      if (!b.iptables) continue;
      const c = await rig.iptablesCounters(b);
      counters[b.target] = c;
      if (c) {
        log(`bench dataplanes: ${b.target}: FORWARD rule ${c.rule} (${c.target}) counted ${c.packets} packets, ${c.bytes} bytes`);
        if (c.packets === 0) throw new Error(`${b.target}: the last FORWARD rule counted no packet: the traffic did not cross the rules`);
      }
    }
  } catch (e) {
    error = e as Error;
  } finally {
    log('bench dataplanes: cleaning up (labs, namespaces, temp dir)');
    const problems = rig.teardownSync();
    for (const p of problems) log(`bench dataplanes: cleanup: ${p}`);
    if (problems.length && !error) error = new Error('cleanup was incomplete');
  }

  const targets = o.targets.map((t) => ({ name: t.name, kind: t.kind }));
  const sum = summarize(targets, samples);
  const cmp = comparisons(sum, o.rules);
  const loadAfter = loadAverage();
  const header: Header = { machine, load: loadAfter, repeats: o.repeats, durationS: o.durationS, warmupS: o.warmupS, smoke: o.smoke, streams: o.streams };
  const notes = built.length ? [`MTU of the client's interface: ${built.map((b) => `${b.target} ${b.mtu ?? '?'}`).join(', ')}.`] : [];
  notes.push(...Object.entries(counters).filter(([, c]) => c).map(([t, c]) =>
    `${t}: the matching ACCEPT (FORWARD rule ${c!.rule}) counted ${c!.packets} packets: every packet crossed all ${c!.rule} rules.`));
  notes.push(...Object.entries(masq).map(([t, c]) =>
    `${t}: Docker's MASQUERADE rule counted ${c.packets} flows; the outside hosts have no route to the pods, so every answered flow was translated (sluice-masq: in BPF).`));
  if (o.json) {
    writeFileSync(o.json, `${JSON.stringify({
      benchmark: 'sluice dataplanes', schema: 1, startedAt, finishedAt: new Date().toISOString(),
      ok: !error, ...(error ? { error: error.message } : {}),
      options: { repeats: o.repeats, durationS: o.durationS, warmupS: o.warmupS, rules: o.rules, streams: o.streams, smoke: o.smoke },
      methods: {
        crr: { tool: 'slbench-crr (src/bench/crr/crr.c)', port: CRR_PORT, requestBytes: CRR_REQUEST, responseBytes: CRR_RESPONSE, timeoutMs: CRR_TIMEOUT_MS, close: 'client RST (SO_LINGER 0)', cpus: [cpus.iperfClient, cpus.iperfServer] },
        cpuPerGb: 'machine-wide busy CPU seconds (/proc/stat: user+nice+system+irq+softirq+steal, all CPUs) over each iperf3 client run, per 10^9 bytes received',
      },
      machine, load: { before: loadBefore, after: loadAfter }, cpus,
      targets: targets.map((t) => t.name),
      setup: built.map((b) => ({ target: b.target, clientNs: b.pair.clientNs, serverNs: b.pair.serverNs, clientIp: b.clientIp, serverIp: b.pair.serverIp, mtu: b.mtu, lab: b.lab ?? null, iptables: b.iptables ? { rules: b.iptables.rules, counters: counters[b.target] ?? null } : null, masquerade: masq[b.target] ?? null })),
      samples, medians: sum.medians, ratios: sum.ratios, pairedRatios: sum.pairedRatios, crrErrors: sum.crrErrors, comparisons: cmp,
    }, null, 2)}\n`);
    log(`bench dataplanes: wrote ${o.json}`);
  }
  if (o.svg && !error) {
    writeFileSync(o.svg, renderSvg(header, targets, sum));
    log(`bench dataplanes: wrote ${o.svg}`);
  }
  for (const [t, e] of Object.entries(sum.crrErrors)) {
    log(`bench dataplanes: warning: ${t}: ${e.errors} new connections failed (first: ${e.firstError ?? '?'})${e.failedRuns ? `; ${e.failedRuns} of ${e.runs} runs completed none: no figure` : ''}`);
  }
  if (error) {
    log(`bench dataplanes: failed: ${error.message}`);
    if (process.env.SLUICE_DEBUG) log(error.stack ?? '');
    return 1;
  }
  process.stdout.write(renderMarkdown(header, targets, sum, cmp, notes));
  return 0;
}

export async function dataplanesMain(argv: readonly string[]): Promise<number> {
  let o: DataplanesOptions;
  try {
    o = parseDataplanesArgs(argv);
  } catch (e) {
    if (e instanceof UsageError) {
      log(`bench dataplanes: ${e.message}\n\n${DATAPLANES_USAGE}`);
      return 2;
    }
    throw e;
  }
  if (o.help) {
    process.stdout.write(DATAPLANES_USAGE);
    return 0;
  }
  return run(o);
}
