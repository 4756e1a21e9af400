/**
 * The same-node benchmark's topology and run:
 *
 *   baseline  slbench-va ──veth── slbench-vb        10.250.0.1/24 → 10.250.0.2/24
 *   sluice    slbench-a ── sluice node (netns slbench-node) ── slbench-b   pod → pod
 *
 * sluice is set up with its CLI, as a user would (`node init`, `endpoint add`), and
 * removed with `node reset`. Everything the run creates carries the prefix "slbench":
 * namespaces slbench-*, pins under /sys/fs/bpf/slbench, a temp dir /tmp/slbench-*, and
 * /run/slbench.json, which records the running benchmark's PID, temp dir and children
 * so that a later run can clean up after one that was killed (SIGKILL, power loss).
 * Teardown is synchronous so that a signal handler can run it to the end.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkReach, cmdlineOf, isAlive, killStaleTools, Processes, readRunState, type RunState } from './proc.js';
import { TARGETS, fmt, type IperfSample, type SockperfSample, type Target } from './stats.js';
import { runIperf3, runSockperf, type Cpus, type Pair } from './tools.js';

export const PREFIX = 'slbench';
export const NODE_NS = `${PREFIX}-node`;
export const POD_A_NS = `${PREFIX}-a`;
export const POD_B_NS = `${PREFIX}-b`;
export const VETH_A_NS = `${PREFIX}-va`;
export const VETH_B_NS = `${PREFIX}-vb`;
export const PIN_ROOT = `/sys/fs/bpf/${PREFIX}`;
export const STATE_FILE = `/run/${PREFIX}.json`;
/** The names mkdtemp gives our temp dirs. */
const TEMP_DIR_NAME = new RegExp(`^${PREFIX}-[A-Za-z0-9]{6}$`);
export const BASELINE_A_IP = '10.250.0.1';
export const BASELINE_B_IP = '10.250.0.2';

/** The repository root (this file is dist/bench/same-node.js). */
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const SLUICE_BIN = join(REPO_ROOT, 'bin', 'sluice.js');

export type Log = (line: string) => void;

/** Pins: iperf3 client and server on different CPUs, both sockperf ends on one. */
export function chooseCpus(allowed: readonly number[]): { cpus: Cpus; warning?: string } {
  const [first, second] = allowed.includes(0) && allowed.includes(1) ? [0, 1] : [allowed[0] ?? 0, allowed[1]];
  if (second === undefined) {
    return {
      cpus: { iperfClient: first, iperfServer: first, sockperf: first },
      warning: `only CPU ${first} is available: iperf3 client and server share it`,
    };
  }
  return { cpus: { iperfClient: first, iperfServer: second, sockperf: first } };
}

function netnsExists(ns: string): boolean {
  return existsSync(`/run/netns/${ns}`);
}

function ourNamespaces(): string[] {
  try {
    // Only this suite's: the other suites (slbench-ep-*, slbench-dp-*) may be running.
    const mine = new Set([NODE_NS, POD_A_NS, POD_B_NS, VETH_A_NS, VETH_B_NS]);
    return readdirSync('/run/netns').filter((n) => mine.has(n));
  } catch {
    return [];
  }
}

const readState = (): RunState | undefined => readRunState(STATE_FILE);

/** Synchronous `sluice --config CFG ARGS` in the node namespace (for teardown). */
function sluiceSync(config: string, args: readonly string[]): { status: number; out: string } {
  const r = spawnSync('nsenter', [`--net=/run/netns/${NODE_NS}`, process.execPath, SLUICE_BIN, '--config', config, ...args], {
    encoding: 'utf8', timeout: 60_000,
  });
  return { status: r.status ?? -1, out: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? r.error.message : ''}`.trim() };
}

function ipNetnsDel(ns: string): string | undefined {
  const r = spawnSync('ip', ['netns', 'del', ns], { encoding: 'utf8' });
  return r.status === 0 ? undefined : `ip netns del ${ns}: ${(r.stderr ?? '').trim() || `exit ${r.status}`}`;
}

export interface PodInfo {
  ns: string;
  name: string;
  ip: string;
  hostIfname?: string;
  id?: string | number;
}

export interface Setup {
  mtu: number;
  baseline: { clientNs: string; serverNs: string; clientIp: string; serverIp: string; mtu: number };
  sluice: { nodeNs: string; config: string; pinRoot: string; client: PodInfo; server: PodInfo; mtu: number };
}

export interface RunPlan {
  repeats: number;
  durationS: number;
  cpus: Cpus;
}

export interface Samples {
  iperf3: IperfSample[];
  sockperf: SockperfSample[];
}

export class SameNodeBench {
  readonly procs: Processes;
  private tempDir: string | undefined;
  private config: string | undefined;
  private stateWritten = false;
  private closed = false;
  private setupInfo: Setup | undefined;

  constructor(private readonly log: Log) {
    this.procs = new Processes((pids) => this.writeState(pids));
  }

  // -------------------------------------------------------------------------------
  // Start: refuse to run beside another benchmark, clean up after a killed one.

  begin(): void {
    const st = readState();
    if (st && st.pid !== process.pid && isAlive(st.pid) && (cmdlineOf(st.pid) ?? '').includes('bench/main')) {
      throw new Error(`another benchmark is running (pid ${st.pid}, see ${STATE_FILE}); wait for it or stop it first`);
    }
    const found: string[] = killStaleTools(st?.children ?? []);
    const config = st?.tempDir ? join(st.tempDir, 'config.yaml') : undefined;
    if (netnsExists(NODE_NS) && config && existsSync(config)) {
      const r = sluiceSync(config, ['node', 'reset']);
      found.push(r.status === 0 ? 'a sluice node (reset)' : `a sluice node (reset failed: ${r.out})`);
    }
    for (const ns of ourNamespaces()) {
      const err = ipNetnsDel(ns);
      found.push(err ?? `netns ${ns}`);
    }
    if (existsSync(PIN_ROOT)) {
      rmSync(PIN_ROOT, { recursive: true, force: true });
      found.push(PIN_ROOT);
    }
    for (const d of readdirSync(tmpdir())) {
      // Only temp dirs this benchmark made (mkdtemp: prefix and six characters).
      if (TEMP_DIR_NAME.test(d) && statSync(join(tmpdir(), d), { throwIfNoEntry: false })?.isDirectory()) {
        rmSync(join(tmpdir(), d), { recursive: true, force: true });
        found.push(join(tmpdir(), d));
      }
    }
    if (found.length) this.log(`bench: removed what an interrupted earlier run left: ${found.join(', ')}`);
    this.writeState([]);
  }

  private writeState(children: number[]): void {
    if (this.closed) return;
    const s: RunState = { pid: process.pid, tempDir: this.tempDir, children };
    try {
      writeFileSync(STATE_FILE, `${JSON.stringify(s)}\n`);
      this.stateWritten = true;
    } catch {
      // Only needed for cleaning up after a killed run; not worth failing the run over.
    }
  }

  // -------------------------------------------------------------------------------
  // Setup

  private async sh(name: string, cmd: string, args: readonly string[], timeoutMs = 30_000): Promise<string> {
    return (await this.procs.run(name, cmd, args, timeoutMs)).stdout;
  }

  private async sluice(args: readonly string[], timeoutMs = 60_000): Promise<string> {
    if (!this.config) throw new Error('no sluice config yet');
    return this.sh(`sluice ${args.join(' ')}`, 'nsenter',
      [`--net=/run/netns/${NODE_NS}`, process.execPath, SLUICE_BIN, '--config', this.config, ...args], timeoutMs);
  }

  private async addNetns(ns: string): Promise<void> {
    await this.sh(`ip netns add ${ns}`, 'ip', ['netns', 'add', ns]);
    await this.sh(`lo up in ${ns}`, 'ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  }

  private async linkMtu(ns: string, dev: string): Promise<number> {
    const out = await this.sh(`ip link show ${dev} in ${ns}`, 'ip', ['-n', ns, '-j', 'link', 'show', 'dev', dev]);
    const mtu = (JSON.parse(out) as { mtu?: number }[])[0]?.mtu;
    if (typeof mtu !== 'number') throw new Error(`no MTU for ${dev} in ${ns}`);
    return mtu;
  }

  private ping(ns: string, ip: string, what: string): Promise<void> {
    return checkReach(this.procs, ns, ip, what);
  }

  private async setupSluice(): Promise<Setup['sluice']> {
    this.tempDir = mkdtempSync(join(tmpdir(), `${PREFIX}-`));
    this.writeState(this.procs.pids());
    this.config = join(this.tempDir, 'config.yaml');
    writeFileSync(this.config, [
      `nodeName: ${PREFIX}`,
      `pinRoot: ${PIN_ROOT}`,
      `stateDir: ${join(this.tempDir, 'state')}`,
      `runDir: ${join(this.tempDir, 'run')}`,
      '',
    ].join('\n'));
    this.log(`bench: setting up sluice: node ${NODE_NS}, pods ${POD_A_NS} → ${POD_B_NS} (config ${this.config})`);
    await this.addNetns(NODE_NS);
    await this.sluice(['node', 'init'], 300_000);
    const pods: PodInfo[] = [];
    for (const [ns, name] of [[POD_A_NS, 'bench/a'], [POD_B_NS, 'bench/b']] as const) {
      await this.addNetns(ns);
      const e = JSON.parse(await this.sluice(['endpoint', 'add', '--netns', ns, '--name', name, '-o', 'json'])) as Partial<PodInfo>;
      if (typeof e.ip !== 'string') throw new Error(`sluice endpoint add printed no ip for ${name}`);
      pods.push({ ns, name, ip: e.ip, hostIfname: e.hostIfname, id: e.id });
    }
    const [client, server] = pods as [PodInfo, PodInfo];
    const mtu = await this.linkMtu(client.ns, 'eth0');
    await this.ping(client.ns, server.ip, 'sluice pods');
    return { nodeNs: NODE_NS, config: this.config, pinRoot: PIN_ROOT, client, server, mtu };
  }

  private async setupBaseline(mtu: number): Promise<Setup['baseline']> {
    this.log(`bench: setting up the baseline: ${VETH_A_NS} ──veth── ${VETH_B_NS} (MTU ${mtu})`);
    await this.addNetns(VETH_A_NS);
    await this.addNetns(VETH_B_NS);
    await this.sh('veth pair', 'ip', ['-n', VETH_A_NS, 'link', 'add', 'eth0', 'mtu', String(mtu), 'type', 'veth',
      'peer', 'name', 'eth0', 'mtu', String(mtu), 'netns', VETH_B_NS]);
    for (const [ns, ip] of [[VETH_A_NS, BASELINE_A_IP], [VETH_B_NS, BASELINE_B_IP]] as const) {
      // IPv4 only, like sluice's pod interfaces.
      await this.sh(`disable IPv6 in ${ns}`, 'nsenter', [`--net=/run/netns/${ns}`, 'sysctl', '-qw', 'net.ipv6.conf.eth0.disable_ipv6=1']);
      await this.sh(`address in ${ns}`, 'ip', ['-n', ns, 'addr', 'add', `${ip}/24`, 'dev', 'eth0']);
      await this.sh(`eth0 up in ${ns}`, 'ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
    }
    await this.ping(VETH_A_NS, BASELINE_B_IP, 'baseline veth pair');
    return { clientNs: VETH_A_NS, serverNs: VETH_B_NS, clientIp: BASELINE_A_IP, serverIp: BASELINE_B_IP, mtu };
  }

  /** sluice first (the baseline copies the pods' MTU so both carry the same packets). */
  async setup(): Promise<Setup> {
    const sluice = await this.setupSluice();
    const baseline = await this.setupBaseline(sluice.mtu);
    this.setupInfo = { mtu: sluice.mtu, baseline, sluice };
    return this.setupInfo;
  }

  pair(target: Target): Pair {
    const s = this.setupInfo;
    if (!s) throw new Error('not set up');
    return target === 'baseline'
      ? { target, clientNs: s.baseline.clientNs, serverNs: s.baseline.serverNs, serverIp: s.baseline.serverIp }
      : { target, clientNs: s.sluice.client.ns, serverNs: s.sluice.server.ns, serverIp: s.sluice.server.ip };
  }

  // -------------------------------------------------------------------------------
  // Measuring: per repeat, per tool, baseline then sluice.

  async measure(plan: RunPlan, samples: Samples): Promise<void> {
    const { repeats, durationS, cpus } = plan;
    for (let r = 1; r <= repeats; r++) {
      const tag = `[repeat ${r}/${repeats}]`;
      for (const target of TARGETS) {
        this.log(`bench: ${tag} iperf3 ${target}: ${durationS} s, client on CPU ${cpus.iperfClient}, server on CPU ${cpus.iperfServer}`);
        const { cpuBusyS: _unsampled, ...s } = await runIperf3(this.procs, this.pair(target), durationS, cpus);
        samples.iperf3.push({ repeat: r, target, ...s });
        this.log(`bench: ${tag}   → ${fmt(s.gbps)} Gbit/s (${s.retransmits ?? '?'} retransmits)`);
      }
      for (const target of TARGETS) {
        this.log(`bench: ${tag} sockperf ${target}: ${durationS} s, both ends on CPU ${cpus.sockperf}`);
        const s = await runSockperf(this.procs, this.pair(target), durationS, cpus);
        samples.sockperf.push({ repeat: r, target, ...s });
        this.log(`bench: ${tag}   → RTT p50 ${fmt(s.p50Us)} µs, p99 ${fmt(s.p99Us)} µs (${s.observations ?? '?'} round trips)`);
      }
    }
  }

  // -------------------------------------------------------------------------------
  // Teardown: synchronous, idempotent; returns what could not be removed.

  teardownSync(): string[] {
    const problems: string[] = [];
    this.closed = true;
    this.procs.killAllSync();
    if (this.config && existsSync(this.config) && netnsExists(NODE_NS)) {
      const r = sluiceSync(this.config, ['node', 'reset']);
      if (r.status !== 0) problems.push(`sluice node reset: ${r.out}`);
    }
    for (const ns of [POD_A_NS, POD_B_NS, NODE_NS, VETH_A_NS, VETH_B_NS]) {
      if (netnsExists(ns)) {
        const err = ipNetnsDel(ns);
        if (err) problems.push(err);
      }
    }
    rmSync(PIN_ROOT, { recursive: true, force: true });
    if (existsSync(PIN_ROOT)) problems.push(`${PIN_ROOT} is still there`);
    if (this.tempDir) rmSync(this.tempDir, { recursive: true, force: true });
    const left = this.procs.pids().filter(isAlive);
    if (left.length) problems.push(`processes still running: ${left.join(', ')}`);
    if (this.stateWritten && readState()?.pid === process.pid && left.length === 0) rmSync(STATE_FILE, { force: true });
    this.config = undefined;
    this.tempDir = undefined;
    return problems;
  }
}
