/**
 * `scripts/bench dataplanes`: building the targets, running them, removing them.
 * Namespaces slbench-dp-* (targets.ts), sluice labs slbenchdp{v,d,h}, a temp dir
 * /tmp/slbench-dp-XXXXXX (iptables rule files, the compiled slbench-crr) and /run/slbench-dp.json (this run's PID,
 * temp dir and children, so that a later run cleans up after a killed one). Teardown is
 * synchronous so that a signal handler can run it to the end.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { checkReach, cmdlineOf, isAlive, killStaleTools, Processes, readRunState, type RunState } from '../proc.js';
import { SLUICE_BIN, type Log } from '../same-node.js';
import type { Pair } from '../tools.js';
import { stringify } from 'yaml';
import { ruleSetDocs } from '../policy.js';
import { ADDRESS_RANGE, cidrsOverlap, iptablesRules, MASQUERADE_RULE, NS_PREFIX, parseRuleCounters, planFor, type NetnsPlan, type TargetInfo } from './targets.js';

export const STATE_FILE = '/run/slbench-dp.json';
const TEMP_DIR_NAME = /^slbench-dp-[A-Za-z0-9]{6}$/;
export const LABS: Record<'vxlan' | 'direct' | 'hybrid', string> = { vxlan: 'slbenchdpv', direct: 'slbenchdpd', hybrid: 'slbenchdph' };

interface LabPod { name: string; node: string; netns: string; ip: string | null }
interface LabStatusJson {
  name: string; mode: string; nodes: { name: string; netns: string; underlayIP: string; config: string }[]; pods: LabPod[];
  external: { name: string; netns: string; ip: string }[];
}

export interface Built {
  target: string;
  pair: Pair;
  clientIp: string;
  mtu: number | null;
  namespaces: string[];
  lab?: string;
  iptables?: NetnsPlan['iptables'];
  /** bridge-masq: the node whose nat table masquerades. */
  masquerade?: { ns: string };
}

/** An iptables rule's counters: its number, what `iptables -L -v -x` shows of it. */
export type RuleCounters = { rule: number; packets: number; bytes: number; target: string };

const readState = (): RunState | undefined => readRunState(STATE_FILE);

function ourNamespaces(): string[] {
  try {
    return readdirSync('/run/netns').filter((n) => n.startsWith(NS_PREFIX));
  } catch {
    return [];
  }
}

function labDownSync(lab: string): string | undefined {
  const r = spawnSync(process.execPath, [SLUICE_BIN, 'lab', 'down', '--name', lab], { encoding: 'utf8', timeout: 120_000 });
  return r.status === 0 ? undefined : `sluice lab down --name ${lab}: ${`${r.stderr ?? ''}${r.stdout ?? ''}`.trim() || `exit ${r.status}`}`;
}

const nsName = (path: string) => basename(path);

export class DataplanesRig {
  readonly procs: Processes;
  private tempDir: string | undefined;
  private closed = false;
  private stateWritten = false;
  private readonly labsStarted = new Set<string>();
  private readonly built: Built[] = [];

  constructor(private readonly log: Log) {
    this.procs = new Processes((pids) => this.writeState(pids));
  }

  /** Refuses to run beside another run; removes what a killed run left. */
  begin(): void {
    const st = readState();
    if (st && st.pid !== process.pid && isAlive(st.pid) && (cmdlineOf(st.pid) ?? '').includes('bench/main')) {
      throw new Error(`another dataplanes benchmark is running (pid ${st.pid}, see ${STATE_FILE})`);
    }
    const found: string[] = killStaleTools(st?.children ?? []);
    for (const lab of Object.values(LABS)) {
      if (existsSync(`/run/netns/${lab}-underlay`) || existsSync(`/var/lib/sluice-lab/${lab}`)) {
        found.push(labDownSync(lab) ?? `lab ${lab}`);
      }
    }
    for (const n of ourNamespaces()) {
      const r = spawnSync('ip', ['netns', 'del', n], { encoding: 'utf8' });
      found.push(r.status === 0 ? `netns ${n}` : `ip netns del ${n}: ${r.stderr.trim()}`);
    }
    for (const d of readdirSync(tmpdir())) {
      if (TEMP_DIR_NAME.test(d)) {
        rmSync(join(tmpdir(), d), { recursive: true, force: true });
        found.push(join(tmpdir(), d));
      }
    }
    if (found.length) this.log(`bench dataplanes: removed what an interrupted earlier run left: ${found.join(', ')}`);
    this.checkRootNamespace();
    this.tempDir = mkdtempSync(join(tmpdir(), 'slbench-dp-'));
    this.writeState([]);
  }

  /** Our range must overlap no address or route of the root namespace (this one). */
  private checkRootNamespace(): void {
    const conflicts: string[] = [];
    for (const what of ['addr', 'route']) {
      const r = spawnSync('ip', ['-4', '-j', what, 'show'], { encoding: 'utf8' });
      let rows: { addr_info?: { local: string; prefixlen: number }[]; ifname?: string; dst?: string }[];
      try {
        rows = JSON.parse(r.stdout || '[]');
      } catch {
        continue;
      }
      for (const row of rows) {
        const cidrs = what === 'addr' ? (row.addr_info ?? []).map((a) => `${a.local}/${a.prefixlen}`) : row.dst && row.dst !== 'default' ? [row.dst] : [];
        for (const c of cidrs) if (cidrsOverlap(c, ADDRESS_RANGE)) conflicts.push(`${what} ${c}${row.ifname ? ` on ${row.ifname}` : ''}`);
      }
    }
    if (conflicts.length) throw new Error(`${ADDRESS_RANGE} overlaps the root namespace: ${conflicts.join(', ')}`);
  }

  private writeState(children: number[]): void {
    if (this.closed) return;
    try {
      writeFileSync(STATE_FILE, `${JSON.stringify({ pid: process.pid, tempDir: this.tempDir, children } satisfies RunState)}\n`);
      this.stateWritten = true;
    } catch {
      // only for cleaning up after a killed run
    }
  }

  private async sh(cmd: readonly string[], timeoutMs = 60_000): Promise<string> {
    return (await this.procs.run(cmd.join(' ').slice(0, 120), cmd[0]!, cmd.slice(1), timeoutMs)).stdout;
  }

  private ping(ns: string, ip: string, what: string): Promise<void> {
    return checkReach(this.procs, ns, ip, what);
  }

  /** This run's temp dir (rule files, the compiled connection-rate tool); removed by teardown. */
  workDir(): string {
    if (!this.tempDir) throw new Error('the rig has no temp dir: begin() first');
    return this.tempDir;
  }

  /** The iptables-restore file of N FORWARD rules; n < 0: bridge-masq's Docker rules. */
  private ruleFile(n: number): string {
    return join(this.tempDir!, n < 0 ? 'docker-masquerade.rules' : `iptables-${n}.rules`);
  }

  /** Builds a namespace target and checks that its client reaches its server. */
  async buildNetns(t: TargetInfo, rules: readonly number[]): Promise<Built> {
    const plan = planFor(t, rules, (n) => this.ruleFile(n));
    if (plan.iptables) writeFileSync(plan.iptables.file, iptablesRules(plan.iptables.rules, plan.iptables.accept));
    if (plan.masquerade) writeFileSync(plan.masquerade.file, plan.masquerade.rules);
    const t0 = Date.now();
    const b: Built = {
      target: t.name, pair: { target: t.name, clientNs: plan.client.ns, serverNs: plan.server.ns, serverIp: plan.server.ip },
      clientIp: plan.client.ip, mtu: plan.mtu, namespaces: plan.namespaces, ...(plan.iptables ? { iptables: plan.iptables } : {}),
      ...(plan.masquerade ? { masquerade: { ns: plan.masquerade.ns } } : {}),
    };
    this.built.push(b); // before creating anything: teardown removes what exists of it
    for (const cmd of plan.commands) await this.sh(cmd);
    if (t.kind === 'outside') await this.checkNoRouteBack(plan.server.ns, plan.client.ip, t.name);
    await this.ping(plan.client.ns, plan.server.ip, t.name);
    this.log(`bench dataplanes: ${t.name} ready (${plan.commands.length} commands, ${Date.now() - t0} ms)`);
    return b;
  }

  /** `sluice lab up` for a mode (`extraPods` more pods per node, for sluice-policy-N); the lab's status JSON. */
  async labUp(mode: 'vxlan' | 'direct' | 'hybrid', extraPods = 0): Promise<LabStatusJson> {
    const lab = LABS[mode];
    this.labsStarted.add(lab);
    const t0 = Date.now();
    const perNode = (mode === 'direct' ? 2 : 1) + extraPods;
    const args = [SLUICE_BIN, 'lab', 'up', '--name', lab, '--mode', mode, '--nodes', '2', '--pods-per-node', String(perNode), '-o', 'json'];
    const out = (await this.procs.run(`sluice lab up --name ${lab}`, process.execPath, args, 300_000)).stdout;
    this.log(`bench dataplanes: lab ${lab} (${mode}) up in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    return JSON.parse(out) as LabStatusJson;
  }

  /**
   * The servers of the sluice-policy-N targets, on n1 (n1-p3, n1-p4, … in the order of
   * `targets`), each behind its N rules, applied through the CLI as a user does. Waits
   * until the datapath enforces them: n1-p2 (no rule allows it) is denied every server.
   */
  async applyRuleSets(targets: readonly TargetInfo[], lab: LabStatusJson): Promise<Map<string, LabPod>> {
    const servers = new Map<string, LabPod>();
    const docs: unknown[] = [];
    for (const [k, t] of targets.entries()) {
      const server = lab.pods.find((p) => p.name === `default/n1-p${k + 3}`); // lab pods are named <namespace>/<name>
      if (!server?.ip) throw new Error(`lab ${lab.name}: no pod n1-p${k + 3} for ${t.name}`);
      servers.set(t.name, server);
      docs.push(...ruleSetDocs(t.rules!, { namespace: 'default', server: { app: `n1-p${k + 3}` }, client: { app: 'n1-p1' }, name: `bench-${t.rules}` }));
    }
    const file = join(this.tempDir!, 'policies.yaml');
    writeFileSync(file, docs.map((d) => stringify(d)).join('---\n'));
    const n1 = lab.nodes.find((n) => n.name === 'n1')!;
    const t0 = Date.now();
    await this.sh(['nsenter', `--net=${n1.netns}`, process.execPath, SLUICE_BIN, '--config', n1.config, 'policy', 'apply', '-f', file], 300_000);
    const outsider = lab.pods.find((p) => p.name === 'default/n1-p2')!;
    for (const [name, server] of servers) {
      for (let i = 0; ; i++) {
        const r = await this.procs.run(`ping ${server.ip} from ${outsider.name}`, 'nsenter', [`--net=${outsider.netns}`, 'ping', '-c', '1', '-W', '1', server.ip!], 5000, true);
        if (r.code !== 0) break;
        if (i >= 120) throw new Error(`${name}: the policy is not enforced ${i} s after it was applied (n1-p2 still reaches ${server.ip})`);
        await new Promise((res) => setTimeout(res, 1000));
      }
    }
    this.log(`bench dataplanes: ${targets.map((t) => t.name).join(', ')}: ${docs.length} NetworkPolicies applied and enforced in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    return servers;
  }

  /**
   * An outside target's server must have no route to the client pod (no default route
   * either): then a reply reaches the pod only when its flow was translated to the node's
   * address, and the ping that checks the target shows the masquerade works.
   */
  private async checkNoRouteBack(serverNs: string, clientIp: string, target: string): Promise<void> {
    const rows = JSON.parse(await this.sh(['ip', '-n', serverNs, '-4', '-j', 'route', 'show'])) as { dst?: string }[];
    const back = rows.map((r) => r.dst ?? '').filter((d) => d === 'default' || (d !== '' && cidrsOverlap(d, clientIp)));
    if (back.length) throw new Error(`${target}: the outside host ${serverNs} has a route to the pod ${clientIp} (${back.join(', ')}): the run would not show masquerade`);
  }

  /**
   * A sluice target from a lab: client pod on n1, server pod on n1 (same-node; `server` for
   * sluice-policy-N), on n2, or (outside targets) the lab's outside host.
   */
  async sluiceTarget(t: TargetInfo, lab: LabStatusJson, policyServer?: LabPod): Promise<Built> {
    const client = lab.pods.find((p) => p.name === 'default/n1-p1');
    const outside = lab.external?.[0];
    const server = t.kind === 'outside'
      ? (outside ? { name: outside.name, node: '', netns: outside.netns, ip: outside.ip } : undefined)
      : policyServer ?? (t.name === 'sluice-same-node' ? lab.pods.find((p) => p.name === 'default/n1-p2') : lab.pods.find((p) => p.node === 'n2'));
    if (!client?.ip || !server?.ip) throw new Error(`lab ${lab.name}: no pods for ${t.name} (${lab.pods.map((p) => `${p.name}@${p.node}`).join(', ')})`);
    const b: Built = {
      target: t.name, lab: lab.name, clientIp: client.ip, mtu: null, namespaces: [nsName(client.netns), nsName(server.netns)],
      pair: { target: t.name, clientNs: nsName(client.netns), serverNs: nsName(server.netns), serverIp: server.ip },
    };
    if (t.kind === 'outside') await this.checkNoRouteBack(b.pair.serverNs, client.ip, t.name);
    await this.ping(b.pair.clientNs, server.ip, t.name);
    const out = await this.sh(['ip', '-n', b.pair.clientNs, '-j', 'link', 'show', 'dev', 'eth0']);
    b.mtu = (JSON.parse(out) as { mtu?: number }[])[0]?.mtu ?? null;
    this.built.push(b);
    return b;
  }

  /** Rule `rule` (from 1) of `chain` in `table` of namespace `ns`: its packet and byte counters. */
  private async ruleCounters(ns: string, table: 'filter' | 'nat', chain: string, rule: number): Promise<RuleCounters> {
    const out = await this.sh(['nsenter', `--net=/run/netns/${ns}`, 'iptables', '-w', '-t', table, '-L', chain, String(rule), '-v', '-x', '-n']);
    return { rule, ...parseRuleCounters(out) };
  }

  /** The last FORWARD rule's counters of a bridge-iptables target (the ACCEPT every packet must reach). */
  iptablesCounters(b: Built): Promise<RuleCounters | null> {
    if (!b.iptables || b.iptables.rules === 0) return Promise.resolve(null);
    return this.ruleCounters(b.iptables.ns, 'filter', 'FORWARD', b.iptables.rules);
  }

  /** The MASQUERADE rule's counters of bridge-masq (one packet per translated flow: conntrack does the rest). */
  masqueradeCounters(b: Built): Promise<RuleCounters | null> {
    return b.masquerade ? this.ruleCounters(b.masquerade.ns, 'nat', 'POSTROUTING', MASQUERADE_RULE) : Promise.resolve(null);
  }

  /** Synchronous, idempotent; returns what could not be removed. */
  teardownSync(): string[] {
    const problems: string[] = [];
    this.closed = true;
    this.procs.killAllSync();
    for (const lab of this.labsStarted) {
      const err = labDownSync(lab);
      if (err) problems.push(err);
    }
    this.labsStarted.clear();
    for (const n of ourNamespaces()) {
      const r = spawnSync('ip', ['netns', 'del', n], { encoding: 'utf8' });
      if (r.status !== 0) problems.push(`ip netns del ${n}: ${(r.stderr ?? '').trim()}`);
    }
    if (this.tempDir) rmSync(this.tempDir, { recursive: true, force: true });
    this.tempDir = undefined;
    const left = this.procs.pids().filter(isAlive);
    if (left.length) problems.push(`processes still running: ${left.join(', ')}`);
    if (this.stateWritten && readState()?.pid === process.pid && !left.length) rmSync(STATE_FILE, { force: true });
    return problems;
  }
}
