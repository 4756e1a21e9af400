/**
 * The benchmarks are not part of the suite's pass/fail; their harness is. Each suite of
 * scripts/bench runs here with --smoke (seconds): it must finish, report ok with real
 * samples in its JSON, print its table, and leave nothing behind (namespaces, pins,
 * labs). The numbers of a smoke run mean nothing and are not checked.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { IS_ROOT, REPO, tempDir } from '../helpers/env.js';

if (!IS_ROOT) {
  t.plan(0, 'needs root');
  process.exit(0);
}
t.setTimeout(600_000);

const BENCH = join(REPO, 'scripts', 'bench');
const leftovers = () => [
  ...(existsSync('/run/netns') ? readdirSync('/run/netns') : []).filter((n) => n.startsWith('slbench')),
  ...readdirSync('/sys/fs/bpf').filter((n) => n.startsWith('slbench')).map((n) => `/sys/fs/bpf/${n}`),
  ...(existsSync('/var/lib/sluice-lab') ? readdirSync('/var/lib/sluice-lab') : []).filter((n) => n.startsWith('slbench')).map((n) => `lab ${n}`),
];

function bench(args: readonly string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(BENCH, args, { encoding: 'utf8', timeout: 300_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

t.test('nothing of an earlier benchmark is around', async (tt) => {
  tt.same(leftovers(), []);
});

t.test('scripts/bench --smoke: same node, veth pair against sluice', async (tt) => {
  const json = join(tempDir(tt, 'slt-bench'), 'same-node.json');
  const r = bench(['--smoke', '--json', json]);
  tt.equal(r.status, 0, `exit 0: ${r.stderr.slice(-2000)}`);
  const rep = JSON.parse(readFileSync(json, 'utf8')) as { ok: boolean; samples: { iperf3: { target: string; gbps: number }[]; sockperf: { target: string }[] } };
  tt.equal(rep.ok, true);
  tt.same([...new Set(rep.samples.iperf3.map((s) => s.target))].sort(), ['baseline', 'sluice'], 'iperf3 ran on both');
  tt.ok(rep.samples.iperf3.every((s) => s.gbps > 0), 'and moved data');
  tt.same([...new Set(rep.samples.sockperf.map((s) => s.target))].sort(), ['baseline', 'sluice'], 'sockperf ran on both');
  tt.match(r.stdout, /\| *TCP throughput/i, 'the markdown table');
  tt.same(leftovers(), [], 'nothing left behind');
});

t.test('scripts/bench policy --smoke: program time at N rules', async (tt) => {
  const json = join(tempDir(tt, 'slt-bench'), 'policy.json');
  const r = bench(['policy', '--smoke', '--json', json]);
  tt.equal(r.status, 0, `exit 0: ${r.stderr.slice(-2000)}`);
  const rep = JSON.parse(readFileSync(json, 'utf8')) as { ok: boolean; samples: unknown[]; figures: { rules: number }[] };
  tt.equal(rep.ok, true);
  tt.ok(rep.samples.length > 0, `${rep.samples.length} samples`);
  tt.ok(rep.figures.length >= 2, 'figures for at least two rule counts');
  tt.same(leftovers(), [], 'nothing left behind');
});

t.test('scripts/bench endpoints --smoke: CNI ADD of sluice against the bridge plugin', async (tt) => {
  const json = join(tempDir(tt, 'slt-bench'), 'endpoints.json');
  const r = bench(['endpoints', '--smoke', '--json', json]);
  tt.equal(r.status, 0, `exit 0: ${r.stderr.slice(-2000)}`);
  const rep = JSON.parse(readFileSync(json, 'utf8')) as { ok: boolean; samples: { plugin: string; mode: string; ms: number }[] };
  tt.equal(rep.ok, true);
  for (const plugin of ['sluice', 'bridge']) {
    for (const mode of ['sequential', 'parallel']) {
      tt.equal(rep.samples.filter((s) => s.plugin === plugin && s.mode === mode && s.ms > 0).length, 4, `${plugin}, ${mode}: 4 ADDs timed`);
    }
  }
  tt.match(r.stdout, /\| one at a time \| 4 \|/, 'the markdown table');
  tt.same(leftovers(), [], 'nothing left behind');
});

t.test('scripts/bench dataplanes --smoke: every target, JSON, markdown and SVG', async (tt) => {
  const dir = tempDir(tt, 'slt-bench');
  const [json, svg] = [join(dir, 'dataplanes.json'), join(dir, 'dataplanes.svg')];
  const r = bench(['dataplanes', '--smoke', '--warmup', '1', '--json', json, '--svg', svg]);
  tt.equal(r.status, 0, `exit 0: ${r.stderr.slice(-2000)}`);
  const rep = JSON.parse(readFileSync(json, 'utf8')) as {
    ok: boolean; targets: string[];
    medians: Record<string, { throughput: number | null; rttP50: number | null; crr: number | null; cpuPerGb: number | null }>;
    samples: {
      crr: { target: string; transactions: number; seconds: number; errors: number; connsPerS: number | null }[];
      iperf3: { target: string; cpuBusyS: number | null; cpuPerGb: number | null; receivedBytes: number | null }[];
    };
    crrErrors: Record<string, unknown>;
    comparisons: { name: string; goal: number | null }[];
  };
  tt.equal(rep.ok, true);
  tt.same(rep.targets, ['veth', 'bridge', 'bridge-iptables-100', 'sluice-same-node', 'sluice-policy-100', 'routed', 'flannel-vxlan', 'host-gw', 'sluice-vxlan', 'sluice-direct', 'bridge-masq', 'sluice-masq']);
  for (const t of rep.targets) {
    tt.ok((rep.medians[t]?.throughput ?? 0) > 0 && (rep.medians[t]?.rttP50 ?? 0) > 0, `${t}: throughput and latency measured`);
    const crr = rep.samples.crr.filter((s) => s.target === t);
    tt.equal(crr.length, 1, `${t}: one connection-rate run`);
    tt.ok(crr.every((s) => s.transactions > 0 && s.seconds >= 1 && s.seconds < 5 && s.connsPerS === s.transactions / s.seconds),
      `${t}: new connections completed (${crr.map((s) => `${s.transactions} in ${s.seconds} s, ${s.errors} errors`).join('; ')})`);
    tt.ok((rep.medians[t]?.crr ?? 0) > 0, `${t}: median connections/s ${rep.medians[t]?.crr}`);
    tt.match(r.stderr, new RegExp(`\\[warm-up\\] iperf3 ${t}: [0-9.]+ Gbit/s \\(not counted\\)`), `${t}: warmed up`);
    const cpu = rep.samples.iperf3.filter((s) => s.target === t);
    tt.equal(cpu.length, 1, `${t}: one counted iperf3 run (the warm-up is not a sample)`);
    tt.ok(cpu.length > 0 && cpu.every((s) => (s.cpuBusyS ?? 0) > 0 && (s.receivedBytes ?? 0) > 0), `${t}: CPU time and bytes of each iperf3 run`);
    const perGb = rep.medians[t]?.cpuPerGb ?? 0;
    // 2 CPUs busy for 1 s cannot move less than 1 MB; nor can a GB take less than a millisecond of CPU.
    tt.ok(perGb > 0.001 && perGb < 2000, `${t}: ${perGb} CPU-s/GB`);
  }
  tt.same(rep.crrErrors, {}, 'no failed connection on a reachable target (sluice-masq included: a node port reset by the pod is reused at once)');
  tt.match(r.stderr, /bridge-masq: the MASQUERADE rule counted [1-9]\d* packets/, 'Docker\'s MASQUERADE rule translated the baseline\'s flows');
  tt.ok(rep.comparisons.some((c) => c.name === 'sluice-masq / bridge-masq, new connections/s' && c.goal === 1.2), 'masquerade compared with its goals');
  tt.ok(rep.comparisons.some((c) => c.name === 'sluice-policy-100 / sluice-same-node, new connections/s' && c.goal === null), 'policy cost per connection reported');
  tt.match(r.stdout, /\| sluice-policy-100 \| same-node \|/, 'the markdown table');
  tt.match(r.stdout, /new TCP connections \(conn\/s\) \| CPU per GB, 1 stream \(CPU-s\/GB\) \|/, 'with the new columns');
  tt.match(readFileSync(svg, 'utf8'), /<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"[^]*<\/svg>\s*$/, 'the chart');
  tt.same(leftovers(), [], 'nothing left behind');
});

t.test('bad options: usage error, exit 2, nothing started', async (tt) => {
  const r = bench(['endpoints', '--parallel', '9', '--count', '4']);
  tt.equal(r.status, 2);
  tt.match(r.stderr, /--parallel 9 is more than --count 4/);
  tt.same(leftovers(), []);
});
