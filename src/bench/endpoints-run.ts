/**
 * `scripts/bench endpoints`: CNI ADD wall time of sluice's plugin against the reference
 * `bridge` plugin (src/bench/endpoints.ts has the options, summary and report).
 *
 *   sluice  lab "slbench-ep" (one node, its agent) ← bin/sluice-cni.js
 *   bridge  netns slbench-ep-br (bridge slbr0, host-local IPAM 10.252.0.0/16) ← /usr/lib/cni/bridge
 *   pods    netns slbench-ep-pod-<i>, shared: every phase DELs what it ADDed
 *
 * Everything is named slbench-ep*, removed at the end, also on failure or a signal.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { machineInfo } from './machine.js';
import { UsageError } from './options.js';
import {
  ENDPOINT_USAGE, PLUGINS, parseEndpointBenchArgs, renderEndpointMarkdown, summarizeEndpoints,
  type EndpointBenchArgs, type EndpointSample, type Mode, type Plugin,
} from './endpoints.js';
import { REPO_ROOT, SLUICE_BIN } from './same-node.js';

const log = (line: string) => process.stderr.write(`${line}\n`);
const LAB = 'slbench-ep';
const BRIDGE_NS = 'slbench-ep-br';
const POD_NS = (i: number) => `slbench-ep-pod-${i}`;
const CNI_DIR = '/usr/lib/cni';
const SLUICE_CNI = join(REPO_ROOT, 'bin', 'sluice-cni.js');

function run(cmd: string, args: readonly string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 300_000, maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${(r.stderr || r.stdout || r.error?.message || `exit ${r.status}`).trim()}`);
  return r.stdout;
}

/** Removes everything the benchmark makes (also what a killed run left); returns what failed. */
function teardown(tempDir: string | undefined): string[] {
  const problems: string[] = [];
  const down = spawnSync(process.execPath, [SLUICE_BIN, 'lab', 'down', '--name', LAB], { encoding: 'utf8' });
  if (down.status !== 0) problems.push(`lab down: ${down.stderr.trim()}`);
  let names: string[] = [];
  try {
    names = readdirSync('/run/netns').filter((n) => n.startsWith('slbench-ep-'));
  } catch { /* no namespaces at all */ }
  for (const ns of names) {
    const r = spawnSync('ip', ['netns', 'del', ns], { encoding: 'utf8' });
    if (r.status !== 0) problems.push(`ip netns del ${ns}: ${r.stderr.trim()}`);
  }
  if (tempDir) rmSync(tempDir, { recursive: true, force: true });
  return problems;
}

/** One CNI call, exec'd as a runtime does; wall time in ms. */
function cni(binary: readonly string[], env: Record<string, string>, conf: string): Promise<{ ms: number; out: string }> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const p = spawn(binary[0]!, binary.slice(1), { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => { out += d; });
    p.stderr.on('data', (d: Buffer) => { err += d; });
    p.on('error', reject);
    p.on('close', (code) => {
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      if (code === 0) resolve({ ms, out });
      else reject(new Error(`CNI ${env.CNI_COMMAND} ${env.CNI_CONTAINERID} with ${binary.join(' ')}: exit ${code}: ${out.trim()} ${err.trim()}`));
    });
    p.stdin.end(conf);
  });
}

interface PluginRig {
  binary: string[];
  conf: string;
}

async function phase(rig: PluginRig, plugin: Plugin, mode: Mode, o: EndpointBenchArgs, round: number, samples: EndpointSample[]): Promise<void> {
  const ids = Array.from({ length: o.count }, (_, i) => `slbench-${plugin}-${round}-${mode[0]}-${i}`);
  const env = (cmd: string, i: number) => ({
    CNI_COMMAND: cmd, CNI_CONTAINERID: ids[i]!, CNI_NETNS: `/run/netns/${POD_NS(i)}`, CNI_IFNAME: 'eth0', CNI_PATH: CNI_DIR,
    CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=bench;K8S_POD_NAME=p${i}`, // as kubelet passes them
  });
  const width = mode === 'parallel' ? o.parallel : 1;
  let next = 0;
  const worker = async () => {
    while (next < o.count) {
      const i = next++;
      samples.push({ plugin, mode, round, ms: (await cni(rig.binary, env('ADD', i), rig.conf)).ms });
    }
  };
  await Promise.all(Array.from({ length: width }, worker));
  for (let i = 0; i < o.count; i++) await cni(rig.binary, env('DEL', i), rig.conf);
}

async function measure(o: EndpointBenchArgs, rigs: Record<Plugin, PluginRig>): Promise<EndpointSample[]> {
  const samples: EndpointSample[] = [];
  for (let round = 0; round < o.rounds; round++) {
    const order = round % 2 === 0 ? PLUGINS : [...PLUGINS].reverse();
    for (const mode of ['sequential', 'parallel'] as const) {
      for (const plugin of order) {
        log(`bench endpoints: round ${round + 1}/${o.rounds}: ${plugin}, ${o.count} ADDs ${mode === 'parallel' ? `${o.parallel} at a time` : 'one at a time'}`);
        await phase(rigs[plugin], plugin, mode, o, round, samples);
      }
    }
  }
  return samples;
}

async function runBench(o: EndpointBenchArgs): Promise<number> {
  if (process.getuid?.() !== 0) {
    log('bench endpoints: needs root (network namespaces, BPF)');
    return 1;
  }
  if (!existsSync(join(CNI_DIR, 'bridge')) || !existsSync(join(CNI_DIR, 'host-local'))) {
    log(`bench endpoints: the reference plugins are missing in ${CNI_DIR} (apt-get install containernetworking-plugins)`);
    return 1;
  }
  const stale = teardown(undefined);
  if (stale.length) log(`bench endpoints: cleanup of an earlier run: ${stale.join('; ')}`);
  const tempDir = mkdtempSync(join(tmpdir(), 'slbench-ep-'));
  const onSignal = (sig: NodeJS.Signals) => {
    log(`\nbench endpoints: ${sig}: cleaning up`);
    for (const p of teardown(tempDir)) log(`bench endpoints: cleanup: ${p}`);
    process.exit(sig === 'SIGINT' ? 130 : 143);
  };
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, onSignal);

  const machine = machineInfo();
  const startedAt = new Date().toISOString();
  let samples: EndpointSample[] = [];
  let error: Error | undefined;
  try {
    log(`bench endpoints: ${o.smoke ? 'smoke run: ' : ''}${o.rounds} round(s) of ${o.count} pods, ${o.parallel} in flight; ${machine.kernel}, ${machine.cpuModel}`);
    log('bench endpoints: starting a one-node lab for sluice');
    const lab = JSON.parse(run(process.execPath, [SLUICE_BIN, 'lab', 'up', '--name', LAB, '--nodes', '1', '--pods-per-node', '0', '-o', 'json'])) as { nodes: { socket: string }[] };
    run('ip', ['netns', 'add', BRIDGE_NS]);
    run('ip', ['-n', BRIDGE_NS, 'link', 'set', 'lo', 'up']);
    for (let i = 0; i < o.count; i++) run('ip', ['netns', 'add', POD_NS(i)]);
    const rigs: Record<Plugin, PluginRig> = {
      sluice: {
        binary: [process.execPath, SLUICE_CNI],
        conf: JSON.stringify({ cniVersion: '1.0.0', name: 'slbench', type: 'sluice', socket: lab.nodes[0]!.socket }),
      },
      bridge: {
        binary: ['nsenter', `--net=/run/netns/${BRIDGE_NS}`, join(CNI_DIR, 'bridge')],
        conf: JSON.stringify({
          cniVersion: '1.0.0', name: 'slbench-br', type: 'bridge', bridge: 'slbr0', isGateway: true, ipMasq: false,
          ipam: { type: 'host-local', subnet: '10.252.0.0/16', dataDir: join(tempDir, 'host-local') },
        }),
      },
    };
    samples = await measure(o, rigs);
  } catch (e) {
    error = e as Error;
  } finally {
    log('bench endpoints: cleaning up (lab down, namespaces, temp dir)');
    const problems = teardown(tempDir);
    for (const p of problems) log(`bench endpoints: cleanup: ${p}`);
    if (problems.length && !error) error = new Error('cleanup was incomplete');
  }
  const figures = samples.length ? summarizeEndpoints(samples) : [];
  if (o.json) {
    writeFileSync(o.json, `${JSON.stringify({
      benchmark: 'sluice endpoints', schema: 1, startedAt, finishedAt: new Date().toISOString(),
      ok: !error, ...(error ? { error: error.message } : {}),
      options: { count: o.count, parallel: o.parallel, rounds: o.rounds, smoke: o.smoke }, machine, samples, figures,
    }, null, 2)}\n`);
    log(`bench endpoints: wrote ${o.json}`);
  }
  if (error) {
    log(`bench endpoints: failed: ${error.message}`);
    return 1;
  }
  process.stdout.write(renderEndpointMarkdown(figures, { kernel: machine.kernel, cpu: machine.cpuModel, count: o.count, parallel: o.parallel, rounds: o.rounds }));
  return 0;
}

export async function endpointsMain(argv: readonly string[]): Promise<number> {
  let o: EndpointBenchArgs;
  try {
    o = parseEndpointBenchArgs(argv);
  } catch (e) {
    if (e instanceof UsageError) {
      log(`bench endpoints: ${e.message}\n\n${ENDPOINT_USAGE}`);
      return 2;
    }
    throw e;
  }
  if (o.help) {
    process.stdout.write(ENDPOINT_USAGE);
    return 0;
  }
  return runBench(o);
}
