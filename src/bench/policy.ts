/**
 * The policy benchmark: what a packet and a policy change cost at N rules. The real
 * from_container program runs under BPF_PROG_TEST_RUN on crafted frames (nothing is
 * attached to any device, nothing is sent) with sl_policy and sl_ipcache filled by the
 * real compiler from N NetworkPolicy ingress rules on one pod:
 *   N-1 rules allow TCP/80 from distinct /32 ipBlocks, and the last one allows the client
 *   pod by podSelector: the rule that matches is the last, as in the iptables comparison.
 * Figures per N, each the median of single runs (the kernel's own timing of each run; a
 * forwarded packet is rewritten in place, so BPF_PROG_TEST_RUN's repeat cannot be used),
 * and paired with N = 0 (no policy) measured in the same round:
 *   new flow     a client SYN on a fresh source port: conntrack miss, policy lookups, a new
 *                conntrack entry
 *   established  a packet of a known flow: conntrack hit, no policy lookup
 *   denied       a SYN from a pod no rule allows: every lookup, dropped (none at N = 0)
 *   apply        compiling the policies and writing the map entries
 * Rounds interleave every N, so slow drifts of the machine hit every N alike.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BpfObject, type LoadedObject } from '../bpf/object.js';
import type { BpfMap } from '../bpf/map.js';
import { testRun } from '../bpf/testrun.js';
import { buildProgram } from '../datapath/build.js';
import { FIRST_POD_IDENTITY, identityLabels } from '../identity/identity.js';
import { TCP_ACK, TCP_SYN, tcpFrame, type FrameAddrs } from '../net/packets.js';
import type { PolicyKey, PolicyValue } from '../maps/policy.js';
import { ipcacheKeyOf } from '../maps/ipcache.js';
import { compilePolicies } from '../policy/compile.js';
import { validatePolicies } from '../policy/parse.js';
import type { NetworkPolicy } from '../policy/types.js';
import { median } from './stats.js';

export const DEFAULT_RULE_COUNTS = [10, 1000, 10000] as const;
const RULES_PER_POLICY = 100;
const NS = 'bench';
const GATEWAY = '169.254.1.1';
const HOST_MAC = 'ee:ee:00:00:00:01';
const TC_ACT_SHOT = 2;

interface BenchPod { id: number; name: string; ip: string; mac: string; ifindex: number; labels: Record<string, string> }
/** The senders sit behind loopback (ifindex 1, the test run's device); the server elsewhere. */
const PODS: BenchPod[] = [
  { id: 1, name: 'client', ip: '10.244.0.10', mac: '0a:58:0a:f4:00:0a', ifindex: 1, labels: { app: 'client' } },
  { id: 2, name: 'server', ip: '10.244.0.20', mac: '0a:58:0a:f4:00:14', ifindex: 100, labels: { app: 'server' } },
  { id: 3, name: 'other', ip: '10.244.0.30', mac: '0a:58:0a:f4:00:1e', ifindex: 1, labels: { app: 'other' } },
];
const pod = (name: string) => PODS.find((p) => p.name === name)!;

/** Who the rules are for: the pods they select and allow, and the port the last rule opens (any when undefined). */
export interface RuleSetTarget {
  namespace: string;
  server: Record<string, string>;
  client: Record<string, string>;
  port?: number;
  /** Prefix of the policies' names (`<prefix>-0000`, …). */
  name: string;
}

const BENCH_TARGET: RuleSetTarget = { namespace: NS, server: { app: 'server' }, client: { app: 'client' }, port: 80, name: 'rules' };

/**
 * N ingress rules on the server pod, the matching one (the client's podSelector) last;
 * the N-1 others allow TCP/80 from /32 ipBlocks that are the same for every N (CIDR
 * identities are shared, so rule sets of several N fit sl_ipcache together).
 */
export function ruleSet(n: number, to: RuleSetTarget = BENCH_TARGET): NetworkPolicy[] {
  return validatePolicies(ruleSetDocs(n, to), `${n} rules`);
}

/** ruleSet's policies as the documents a user applies (apiVersion, kind, metadata, spec). */
export function ruleSetDocs(n: number, to: RuleSetTarget = BENCH_TARGET): unknown[] {
  if (n === 0) return [];
  const rules: unknown[] = [];
  for (let i = 0; i < n - 1; i++) {
    const a = 10 + Math.floor(i / 65536), b = Math.floor(i / 256) % 256, c = i % 256;
    rules.push({ from: [{ ipBlock: { cidr: `172.${a}.${b}.${c}/32` } }], ports: [{ protocol: 'TCP', port: 80 }] });
  }
  rules.push({ from: [{ podSelector: { matchLabels: to.client } }], ...(to.port === undefined ? {} : { ports: [{ protocol: 'TCP', port: to.port }] }) });
  const policies: unknown[] = [];
  for (let i = 0; i < rules.length; i += RULES_PER_POLICY) {
    policies.push({
      apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy',
      metadata: { name: `${to.name}-${String(i / RULES_PER_POLICY).padStart(4, '0')}`, namespace: to.namespace },
      spec: { podSelector: { matchLabels: to.server }, ingress: rules.slice(i, i + RULES_PER_POLICY) },
    });
  }
  return policies;
}

export interface PolicySample {
  round: number;
  rules: number;
  /** Entries written to sl_policy and CIDR identities put in sl_ipcache. */
  policyEntries: number;
  cidrIdentities: number;
  compileMs: number;
  writeMs: number;
  newFlowNs: number;
  establishedNs: number;
  /** null at 0 rules: nothing is denied. */
  deniedNs: number | null;
}

export interface PolicyBenchOptions {
  rules: readonly number[];
  rounds: number;
  /** Single runs per figure. */
  runs: number;
}

interface Maps {
  endpoints: BpfMap<{ ip: string }, { ifindex: number; id: number; mac: string; host_mac: string; identity: number; flags: number }>;
  policy: BpfMap<PolicyKey, PolicyValue>;
  ipcache: BpfMap<{ prefixlen: number; ip: string }, { identity: number; tunnel_endpoint: string; flags: number }>;
  policyCidr: BpfMap<{ prefixlen: number; ip: string }, { identity: number }>;
  ct: BpfMap;
}

/** The loaded program with its own maps under a temporary pin root; `close` removes everything. */
export class PolicyRig {
  private readonly obj: BpfObject;
  private readonly loaded: LoadedObject;
  private readonly maps: Maps;
  private readonly identities = new Map<number, Record<string, string>>();
  private readonly identityOf = new Map<string, number>();

  private constructor(readonly pinRoot: string, private readonly cacheDir: string) {
    this.obj = BpfObject.open(buildProgram('from_container', { cacheDir }).object, { pinRoot });
    this.obj.setGlobals({ sl_gateway_ip: GATEWAY });
    this.loaded = this.obj.load();
    this.maps = {
      endpoints: this.loaded.map('sl_endpoints'),
      policy: this.loaded.map('sl_policy'),
      ipcache: this.loaded.map('sl_ipcache'),
      policyCidr: this.loaded.map('sl_policy_cidr'),
      ct: this.loaded.map('sl_ct_v2'),
    };
    PODS.forEach((p, i) => {
      const labels = identityLabels(NS, p.labels);
      this.identities.set(FIRST_POD_IDENTITY + i, labels);
      this.identityOf.set(p.name, FIRST_POD_IDENTITY + i);
      this.maps.endpoints.update({ ip: p.ip }, { ifindex: p.ifindex, id: p.id, mac: p.mac, host_mac: HOST_MAC, identity: FIRST_POD_IDENTITY + i, flags: 0 });
    });
  }

  /** `pinRoot`: an empty directory on bpffs; it is removed by close(). */
  static create(pinRoot: string): PolicyRig {
    const cacheDir = mkdtempSync(join(tmpdir(), 'slbench-policy-build-'));
    try {
      return new PolicyRig(pinRoot, cacheDir);
    } catch (e) {
      rmSync(cacheDir, { recursive: true, force: true });
      rmSync(pinRoot, { recursive: true, force: true });
      throw e;
    }
  }

  /** Compiles `policies` and makes the maps hold exactly their entries; times both steps. */
  install(policies: readonly NetworkPolicy[]): { compileMs: number; writeMs: number; entries: number; cidrs: number } {
    this.maps.policy.clear();
    this.maps.ipcache.clear();
    this.maps.policyCidr.clear();
    this.maps.ct.clear();
    const t0 = process.hrtime.bigint();
    const compiled = compilePolicies({
      policies, namespaces: new Map([[NS, {}]]), identities: this.identities, identityPorts: new Map(),
      endpoints: PODS.map((p) => ({ id: p.id, namespace: NS, labels: p.labels, ports: [] })),
    });
    const t1 = process.hrtime.bigint();
    for (const { key, value } of compiled.entries.values()) this.maps.policy.update(key, value);
    for (const [cidr, identity] of compiled.cidrIdentities) {
      const [ip, len] = cidr.split('/') as [string, string];
      this.maps.ipcache.update({ prefixlen: Number(len), ip }, { identity, tunnel_endpoint: '0.0.0.0', flags: 0 });
    }
    for (const [cidr, identity] of compiled.addressIdentities) this.maps.policyCidr.update(ipcacheKeyOf(cidr), { identity });
    const t2 = process.hrtime.bigint();
    return { compileMs: Number(t1 - t0) / 1e6, writeMs: Number(t2 - t1) / 1e6, entries: compiled.entries.size, cidrs: compiled.cidrIdentities.size };
  }

  private frame(from: string, sport: number, flags: number): Buffer {
    const src = pod(from), dst = pod('server');
    const a: FrameAddrs = { srcMac: src.mac, dstMac: HOST_MAC, src: src.ip, dst: dst.ip };
    return tcpFrame(a, sport, 80, Buffer.alloc(0), { flags });
  }

  private run(frame: Buffer, want: 'pass' | 'drop'): number {
    const r = testRun(this.loaded.program('from_container'), { data: frame });
    const dropped = r.retval === TC_ACT_SHOT;
    if (dropped !== (want === 'drop')) {
      const m = this.loaded.map<{ reason: string | number; dir: string | number }, unknown>('sl_metrics');
      const reasons = [...m.keys()].map((k) => String(k.reason).replace('SL_REASON_', '').toLowerCase());
      throw new Error(`from_container returned ${r.retval}, expected the packet to ${want === 'drop' ? 'be dropped' : 'pass'} (reasons counted so far: ${reasons.join(', ') || 'none'}): the rule set is not what the benchmark assumes`);
    }
    return r.durationNs;
  }

  /** Median of `runs` single runs, the i-th on frame(i). */
  private medianRun(runs: number, frame: (i: number) => Buffer, want: 'pass' | 'drop'): number {
    const times: number[] = [];
    for (let i = 0; i < runs; i++) times.push(this.run(frame(i), want));
    return median(times);
  }

  /** Median time of `runs` new connections from the client, each on its own source port. */
  newFlowNs(runs: number, firstPort: number): number {
    return this.medianRun(runs, (i) => this.frame('client', firstPort + i, TCP_SYN), 'pass');
  }

  /** Median time of `runs` packets of one established flow. */
  establishedNs(runs: number): number {
    this.run(this.frame('client', 1000, TCP_SYN), 'pass');
    const ack = this.frame('client', 1000, TCP_ACK);
    return this.medianRun(runs, () => ack, 'pass');
  }

  /** Median time of `runs` SYNs that the policy drops. */
  deniedNs(runs: number): number {
    const syn = this.frame('other', 2000, TCP_SYN);
    return this.medianRun(runs, () => syn, 'drop');
  }

  close(): void {
    this.obj.close();
    rmSync(this.pinRoot, { recursive: true, force: true });
    rmSync(this.cacheDir, { recursive: true, force: true });
  }
}

/** Every round measures every rule count (0 first, as the pairing baseline). */
export function measurePolicy(rig: PolicyRig, o: PolicyBenchOptions, log: (line: string) => void): PolicySample[] {
  const counts = [0, ...o.rules.filter((n) => n > 0)];
  const sets = new Map(counts.map((n) => [n, ruleSet(n)]));
  const samples: PolicySample[] = [];
  for (let round = 1; round <= o.rounds; round++) {
    for (const n of counts) {
      const applied = rig.install(sets.get(n)!);
      const sample: PolicySample = {
        round, rules: n, policyEntries: applied.entries, cidrIdentities: applied.cidrs,
        compileMs: applied.compileMs, writeMs: applied.writeMs,
        newFlowNs: rig.newFlowNs(o.runs, 10000),
        establishedNs: rig.establishedNs(o.runs),
        deniedNs: n > 0 ? rig.deniedNs(o.runs) : null,
      };
      samples.push(sample);
      log(`bench policy: round ${round}/${o.rounds}, ${n} rules: new flow ${sample.newFlowNs} ns, established ${sample.establishedNs} ns, denied ${sample.deniedNs ?? '-'} ns, apply ${(sample.compileMs + sample.writeMs).toFixed(0)} ms`);
    }
  }
  return samples;
}

export interface PolicyFigure {
  rules: number;
  policyEntries: number;
  newFlowNs: number;
  establishedNs: number;
  deniedNs: number | null;
  applyMs: number;
  /** Medians over rounds of the per-round ratio to 0 rules (denied: to the smallest N > 0, as nothing is denied at 0). */
  newFlowRatio: number;
  establishedRatio: number;
  deniedRatio: number | null;
}

export function summarizePolicy(samples: readonly PolicySample[]): PolicyFigure[] {
  const counts = [...new Set(samples.map((s) => s.rules))].sort((a, b) => a - b);
  const smallest = counts.find((n) => n > 0);
  const at = (n: number | undefined, round: number) => samples.find((s) => s.rules === n && s.round === round);
  return counts.map((n) => {
    const mine = samples.filter((s) => s.rules === n);
    const ratios = (f: (s: PolicySample) => number | null, base: number | undefined) =>
      median(mine.map((s) => {
        const b = at(base, s.round);
        const x = f(s), y = b ? f(b) : null;
        return x !== null && y ? x / y : NaN;
      }).filter((x) => Number.isFinite(x)));
    return {
      rules: n,
      policyEntries: mine[0]!.policyEntries,
      newFlowNs: median(mine.map((s) => s.newFlowNs)),
      establishedNs: median(mine.map((s) => s.establishedNs)),
      deniedNs: n === 0 ? null : median(mine.map((s) => s.deniedNs ?? NaN)),
      applyMs: median(mine.map((s) => s.compileMs + s.writeMs)),
      newFlowRatio: ratios((s) => s.newFlowNs, 0),
      establishedRatio: ratios((s) => s.establishedNs, 0),
      deniedRatio: n === 0 ? null : ratios((s) => s.deniedNs, smallest),
    };
  });
}

export function renderPolicyMarkdown(figures: readonly PolicyFigure[], header: { kernel: string; cpu: string; rounds: number; runs: number }): string {
  const lines = [
    `Policy cost per packet and per change, ${header.kernel}, ${header.cpu}; ${header.rounds} interleaved round(s), each figure the median of ${header.runs} single runs of from_container under BPF_PROG_TEST_RUN; ratios are medians of per-round ratios.`,
    '',
    '| rules | sl_policy entries | new flow ns (× 0 rules) | established ns (× 0 rules) | denied ns (× smallest N) | apply ms (compile + write) |',
    '| ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  const x = (r: number | null) => (r === null || !Number.isFinite(r) ? '—' : `${r.toFixed(2)}×`);
  for (const f of figures) {
    lines.push(`| ${f.rules} | ${f.policyEntries} | ${f.newFlowNs} (${x(f.newFlowRatio)}) | ${f.establishedNs} (${x(f.establishedRatio)}) | ${f.deniedNs === null ? 'nothing denied' : `${f.deniedNs} (${x(f.deniedRatio)})`} | ${f.applyMs.toFixed(1)} |`);
  }
  return `${lines.join('\n')}\n`;
}
