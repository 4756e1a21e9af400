/**
 * `lab up`: builds the lab from its plan, recording each thing in the lab's state before
 * making it. Order: underlay namespace and bridges, router, nodes with their uplinks and
 * configs, etcd, the agents (started together, each waited for until ready), then the
 * pods through their node's agent, as a container runtime would add them. Any failure
 * (or SIGINT/SIGTERM) removes everything made so far, then reports the error.
 * With the etcd store, the lab's certificates (CA, etcd's, one per node, the lab's own;
 * keys 0600) are made in <dir>/pki before etcd starts; `lab down` removes them with the dir.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { AgentClient } from '../api/client.js';
import type { AgentStatus, CniAddRequest, CniAddResponse } from '../api/types.js';
import { ipBatch } from '../net/ip.js';
import { createNetns } from '../net/netns.js';
import { run } from '../net/exec.js';
import { tryLockFile } from '../util/lock.js';
import { teardown } from './down.js';
import { preflight } from './host.js';
import { DEFAULT_LAB, externalCommands, makePlan, nodeUplinkCommands, underlayCommands, UNDERLAY_SYSCTLS, type NodePlan, type Plan, type PodPlan } from './plan.js';
import { lastLine, logTail, spawnDetached, type Spawned } from './procs.js';
import { formatLabels } from '../util/labels.js';
import { runIn } from './exec.js';
import { labTools } from './tools.js';
import { labRoot, readState, writeState, type LabState, type ProcessRecord } from './state.js';
import { buildTopology, parseTopologyText, type TopologyFlags } from './topology.js';
import { issueCert, makeCA } from './certs.js';

export interface UpOptions {
  /** Topology file (YAML or JSON). */
  file?: string;
  flags?: TopologyFlags;
  /** Progress lines (default: none). */
  log?: (line: string) => void;
  /** Aborts the up (it then cleans up). */
  signal?: AbortSignal;
  /** How long each agent may take to become ready (default 120 s; the first start compiles the datapath). */
  readyTimeoutMs?: number;
  root?: string;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The plan `lab up` would carry out (validation included; nothing is created). */
export function planLab(o: UpOptions): Plan {
  const file = o.file ? parseTopologyText(readTopologyFile(o.file), o.file) : undefined;
  const topo = buildTopology(file, o.flags ?? {});
  const lab = topo.name ?? DEFAULT_LAB;
  return makePlan(topo, lab, o.root ?? labRoot(), labTools(), { badConfigNode: process.env.SLUICE_LAB_TEST_BAD_NODE || undefined });
}

function readTopologyFile(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new Error(`cannot read topology ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

export async function labUp(o: UpOptions): Promise<LabState> {
  const log = o.log ?? (() => {});
  const root = o.root ?? labRoot();
  const plan = planLab({ ...o, root });
  const tools = labTools();
  if (readState(root, plan.lab) || existsSync(plan.dir)) {
    throw new Error(`lab ${plan.lab} exists already (${plan.dir}): see \`sluice lab status --name ${plan.lab}\`, or remove it with \`sluice lab down --name ${plan.lab}\``);
  }
  preflight(plan, tools);

  mkdirSync(root, { recursive: true });
  try {
    mkdirSync(plan.dir, { mode: 0o755 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw new Error(`lab ${plan.lab} exists already (${plan.dir})`);
    throw e;
  }
  const lock = tryLockFile(plan.lockFile)!;
  const state: LabState = {
    version: 1, name: plan.lab, dir: plan.dir, phase: 'creating', created: new Date().toISOString(),
    netns: [], pinRoots: [], dirs: [plan.dir], processes: [], podCIDRs: {}, pods: [], plan,
  };
  try {
    writeState(state);
    await build(plan, state, log, o.signal, o.readyTimeoutMs ?? 120_000);
    state.phase = 'up';
    writeState(state);
    return state;
  } catch (e) {
    const err = e as Error;
    log(`lab up failed: ${err.message.split('\n')[0]}; removing what it made`);
    state.phase = 'failed';
    state.error = err.message;
    try {
      writeState(state);
      await teardown(state, log);
    } catch (te) {
      throw new Error(`${err.message}\n(and the cleanup failed: ${(te as Error).message})`);
    }
    throw err;
  } finally {
    lock.release();
  }
}

/**
 * Runs tasks in parallel; the first failure aborts the others (through `abort`), and the
 * call returns only when every task has stopped, so nothing is still being created when
 * the cleanup starts. Throws the first failure.
 */
async function together<T>(tasks: (() => Promise<T>)[], abort: AbortController): Promise<T[]> {
  let first: unknown;
  const results = await Promise.allSettled(tasks.map((task) => task().catch((e: unknown) => {
    if (first === undefined) first = e;
    abort.abort('another step failed');
    throw e;
  })));
  if (first !== undefined) throw first;
  return results.map((r) => (r as PromiseFulfilledResult<T>).value);
}

async function build(plan: Plan, state: LabState, log: (line: string) => void, outer: AbortSignal | undefined, readyTimeoutMs: number): Promise<void> {
  const abort = new AbortController();
  if (outer?.aborted) abort.abort(outer.reason);
  outer?.addEventListener('abort', () => abort.abort(outer.reason), { once: true });
  const signal = abort.signal;
  const check = () => {
    if (signal.aborted) throw new Error(`interrupted (${String(signal.reason ?? 'signal')})`);
  };
  const newNetns = (name: string) => {
    check();
    state.netns.push(name);
    writeState(state);
    try {
      createNetns(name);
    } catch (e) {
      // Not ours (it appeared since the preflight check): down must not delete it.
      state.netns.pop();
      writeState(state);
      throw e;
    }
  };

  log(`creating the underlay (${plan.subnets.map((s) => `${s.name} ${s.cidr}`).join(', ')})${plan.routerNetns ? ' and its router' : ''}`);
  newNetns(plan.underlayNetns);
  if (plan.routerNetns) newNetns(plan.routerNetns);
  for (const c of underlayCommands(plan)) ipBatch(c.lines, `/run/netns/${c.netns}`);
  run('nsenter', [`--net=/run/netns/${plan.underlayNetns}`, 'sysctl', '-qew', ...UNDERLAY_SYSCTLS]);
  if (plan.routerNetns) run('nsenter', [`--net=/run/netns/${plan.routerNetns}`, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);

  for (const n of plan.nodes) {
    newNetns(n.netns);
    const c = nodeUplinkCommands(plan, n);
    ipBatch(c.underlay, `/run/netns/${plan.underlayNetns}`);
    ipBatch(c.node, n.netnsPath);
    // A node forwards what its pods send outside the cluster, as a real node does (sluice
    // itself only forwards between pods; no address translation is done).
    run('nsenter', [`--net=${n.netnsPath}`, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
    mkdirSync(n.dir, { recursive: true });
    writeFileSync(n.config, n.configText);
  }
  for (const x of plan.external) {
    newNetns(x.netns);
    const c = externalCommands(x);
    ipBatch(c.underlay, `/run/netns/${plan.underlayNetns}`);
    ipBatch(c.host, x.netnsPath);
  }
  if (plan.external.length) log(`outside hosts: ${plan.external.map((x) => `${x.name} ${x.ip}`).join(', ')} (no route to any pod block)`);
  if (plan.storeDir) mkdirSync(plan.storeDir, { recursive: true });
  state.pinRoots.push(plan.pinRoot);
  writeState(state);

  if (plan.etcd) {
    check();
    makeLabCerts(plan);
    log(`certificates in ${plan.etcd.pki.dir} (CA, etcd, ${plan.nodes.length} node(s), the lab's own)`);
    log(`starting etcd on ${plan.etcd.address}:${plan.etcd.clientPort} (in ${plan.underlayNetns})`);
    const rec: ProcessRecord = { role: 'etcd', argv: plan.etcd.argv, cmdline: plan.etcd.argv.slice(2), log: plan.etcd.log };
    state.processes.push(rec);
    writeState(state);
    mkdirSync(plan.etcd.dir, { recursive: true });
    const p = spawnDetached(rec.argv, rec.log);
    rec.pid = p.pid;
    writeState(state);
    await waitEtcd(plan, p, signal);
    log('etcd ready');
  }

  check();
  const agents = plan.nodes.map((n) => {
    const rec: ProcessRecord = { role: 'agent', node: n.name, argv: n.agentArgv, cmdline: n.agentArgv.slice(2), log: n.log };
    state.processes.push(rec);
    return { n, rec };
  });
  writeState(state);
  log(`starting ${agents.length} agent(s)`);
  const started = agents.map(({ n, rec }) => {
    const p = spawnDetached(rec.argv, rec.log);
    rec.pid = p.pid;
    return { n, p };
  });
  writeState(state);
  await together(started.map(({ n, p }) => async () => {
    const s = await waitAgent(n, p, signal, readyTimeoutMs);
    state.podCIDRs[n.name] = s.podCIDR;
    log(`node ${n.name}: agent ready (pid ${p.pid}, pod block ${s.podCIDR}, underlay ${n.underlayIP})`);
  }), abort);
  writeState(state);

  // Namespace labels are cluster state: into the store, where every node's agent finds them.
  // Written as a user would, with \`sluice namespace label\` run on the first node: the
  // lab's store is reachable only from inside the lab (from this namespace, a connection
  // to the etcd address would leave through the machine's own default route).
  const labelled = plan.topology.namespaces.filter((n) => Object.keys(n.labels).length > 0);
  if (labelled.length) {
    const n0 = plan.nodes[0]!;
    for (const ns of labelled) {
      check();
      const argv = ['sluice', 'namespace', 'label', ns.name, ...Object.entries(ns.labels).map(([k, v]) => `${k}=${v}`)];
      const r = await runIn({ netns: n0.netnsPath, config: n0.config }, argv, signal);
      if (r.code !== 0) throw new Error(`labelling namespace ${ns.name} on node ${n0.name} failed (exit ${r.code}): ${r.stderr.trim() || r.stdout.trim()}`);
    }
    log(`namespace labels (through node ${n0.name}): ${labelled.map((n) => `${n.name} ${formatLabels(n.labels)}`).join('; ')}`);
  }

  // Pods: nodes in parallel, one pod at a time per node (the agent serializes adds anyway).
  await together(plan.nodes.map((n) => async () => {
    const client = new AgentClient(n.socket, { timeoutMs: 60_000 });
    for (const pod of plan.pods.filter((x) => x.node === n.name)) {
      newNetns(pod.netns);
      run('ip', ['-n', pod.netns, 'link', 'set', 'lo', 'up']);
      const rec = { ref: pod.ref, node: n.name, netns: pod.netns } as LabState['pods'][number];
      state.pods.push(rec);
      const ans = await addPod(client, pod);
      Object.assign(rec, { ip: ans.endpoint.ip, mac: ans.endpoint.mac, hostIfname: ans.endpoint.hostIfname });
      writeState(state);
      log(`pod ${pod.ref} on ${n.name}: ${ans.endpoint.ip}`);
    }
  }), abort);
}

async function addPod(client: AgentClient, pod: PodPlan): Promise<CniAddResponse> {
  try {
    const req: CniAddRequest = {
      containerId: pod.containerId, ifname: 'eth0', netns: pod.netnsPath, podNamespace: pod.namespace, podName: pod.name,
      labels: pod.labels, ...(pod.ports.length ? { ports: pod.ports } : {}),
    };
    return (await client.post('/v1/cni/add', req)) as CniAddResponse;
  } catch (e) {
    const d = (e as { details?: string }).details;
    throw new Error(`pod ${pod.ref} on ${pod.node}: ${(e as Error).message}${d ? ` (${d})` : ''}`);
  }
}

export async function waitAgent(n: NodePlan, p: Spawned, signal: AbortSignal, timeoutMs: number): Promise<{ podCIDR: string }> {
  const client = new AgentClient(n.socket, { timeoutMs: 2000 });
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    if (signal.aborted) throw new Error(`interrupted (${String(signal.reason ?? 'signal')})`);
    if (p.gone) throw new Error(`node ${n.name}: the agent exited while starting (${await p.exited}): ${lastLine(n.log)}\nthe end of its log (${n.log}):\n${logTail(n.log)}`);
    if (existsSync(n.socket)) {
      try {
        const s = (await client.get('/v1/status')) as AgentStatus;
        if (s.ready) return s as AgentStatus & { podCIDR: string };
        last = s.reason ?? 'not ready';
      } catch (e) {
        last = (e as Error).message;
      }
    }
    if (Date.now() > deadline) throw new Error(`node ${n.name}: the agent is not ready after ${timeoutMs / 1000} s (${last || 'no socket'}); its log ${n.log}:\n${logTail(n.log)}`);
    await sleep(100);
  }
}

/** The lab's CA, etcd's certificate (for its address and 127.0.0.1), each node's and the lab's own. */
function makeLabCerts(plan: Plan): void {
  const pki = plan.etcd!.pki;
  const ca = makeCA(pki.dir, `sluice lab ${plan.lab} CA`);
  issueCert(ca, pki.dir, 'etcd', { cn: `etcd.${plan.lab}`, usage: 'server', sans: [plan.etcd!.address, '127.0.0.1'] });
  issueCert(ca, pki.dir, 'lab', { cn: `lab.${plan.lab}`, usage: 'client' });
  for (const n of plan.nodes) issueCert(ca, pki.dir, `node-${n.name}`, { cn: `node.${n.name}.${plan.lab}`, usage: 'client' });
}

/** Polls etcd's /health (over TLS, with the lab's client certificate) from inside the underlay namespace. */
async function waitEtcd(plan: Plan, p: Spawned, signal: AbortSignal | undefined, timeoutMs = 30_000): Promise<void> {
  const e = plan.etcd!;
  const f = (path: string) => `fs.readFileSync(${JSON.stringify(path)})`;
  const code = `const fs = require('node:fs');
    require('node:https').get({ host: ${JSON.stringify(e.address)}, port: ${e.clientPort}, path: '/health', timeout: 1000,
      ca: ${f(e.pki.ca)}, cert: ${f(e.pki.labCert)}, key: ${f(e.pki.labKey)} }, (res) => {
      let b = ''; res.on('data', (d) => (b += d));
      res.on('end', () => { try { process.exit(JSON.parse(b).health === 'true' ? 0 : 1); } catch { process.exit(1); } });
    }).on('error', () => process.exit(1)).on('timeout', () => process.exit(1));`;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (signal?.aborted) throw new Error(`interrupted (${String(signal.reason ?? 'signal')})`);
    if (p.gone) throw new Error(`etcd exited while starting (${await p.exited}): ${lastLine(e.log)}\nthe end of its log (${e.log}):\n${logTail(e.log)}`);
    const ok = await new Promise<boolean>((resolve) => {
      const c = spawn('nsenter', [`--net=/run/netns/${plan.underlayNetns}`, process.execPath, '-e', code], { stdio: 'ignore' });
      c.on('exit', (status) => resolve(status === 0));
      c.on('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`etcd is not healthy after ${timeoutMs / 1000} s; its log ${e.log}:\n${logTail(e.log)}`);
    await sleep(100);
  }
}
