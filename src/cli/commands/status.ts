import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { AgentStatus } from '../../api/types.js';
import { storeTls, type Config } from '../../config/config.js';
import { kernelFeatures, mapStatus, programStatus, type MapStatus, type ProgramStatus, type KernelFeatures } from '../../datapath/status.js';
import { NodeState } from '../../endpoint/state.js';
import { IdentityAllocator } from '../../identity/identity.js';
import { listPolicies } from '../../policy/store.js';
import { openStore } from '../../store/open.js';
import { callAgent, runningAgent } from '../agent-access.js';
import { configOf } from '../context.js';
import { parseOutput, printJson } from '../output.js';

export interface NodeStatusReport {
  node: string;
  mode: string;
  pinRoot: string;
  initialised: boolean;
  kernel: KernelFeatures;
  agent: { running: boolean; ready?: boolean; reason?: string; pid?: number; lastReconcile?: unknown };
  store: { spec: string; reachable: boolean; error?: string };
  counts: { endpoints: number; identities: number | null; policies: number | null };
  programs: ProgramStatus[];
  maps: MapStatus[];
}

async function storeCounts(cfg: Config): Promise<{ store: NodeStatusReport['store']; identities: number | null; policies: number | null }> {
  try {
    const store = await openStore(cfg.store, { stateDir: cfg.stateDir, tls: storeTls(cfg), timeoutMs: 5000 });
    try {
      const [ids, pols] = await Promise.all([new IdentityAllocator(store).list(), listPolicies(store)]);
      return { store: { spec: cfg.store, reachable: true }, identities: ids.size, policies: pols.length };
    } finally {
      await store.close();
    }
  } catch (e) {
    return { store: { spec: cfg.store, reachable: false, error: (e as Error).message }, identities: null, policies: null };
  }
}

export async function nodeStatus(cfg: Config): Promise<NodeStatusReport> {
  const agent = await runningAgent(cfg);
  let agentStatus: NodeStatusReport['agent'] = { running: false };
  if (agent) {
    try {
      const s = await callAgent<AgentStatus>(agent, 'GET', '/v1/status');
      agentStatus = { running: true, ready: s.ready, ...(s.reason ? { reason: s.reason } : {}), pid: s.pid, lastReconcile: s.lastReconcile };
    } catch (e) {
      agentStatus = { running: true, ready: false, reason: (e as Error).message };
    }
  }
  const { store, identities, policies } = await storeCounts(cfg);
  const initialised = existsSync(join(cfg.stateDir, 'node.json'));
  return {
    node: cfg.nodeName, mode: cfg.mode, pinRoot: cfg.pinRoot, initialised,
    kernel: kernelFeatures(), agent: agentStatus, store,
    counts: { endpoints: initialised ? new NodeState(cfg).endpoints().length : 0, identities, policies },
    programs: programStatus(cfg), maps: mapStatus(cfg),
  };
}

function render(r: NodeStatusReport): string {
  const yes = (b: boolean) => (b ? 'yes' : 'no');
  const lines = [
    `node ${r.node}, mode ${r.mode}, pins ${r.pinRoot}${r.initialised ? '' : ' (not initialised: sluice node init, or start the agent)'}`,
    `kernel ${r.kernel.kernel}: tcx ${yes(r.kernel.tcx)}, redirect_peer ${yes(r.kernel.redirectPeer)}, redirect_neigh ${yes(r.kernel.redirectNeigh)}, ring buffer ${yes(r.kernel.ringBuffer)}`,
    ...r.kernel.fallbacks.map((f) => `  fallback: ${f}`),
    `agent: ${r.agent.running ? `running (pid ${r.agent.pid ?? '?'}), ${r.agent.ready ? 'ready' : `not ready${r.agent.reason ? `: ${r.agent.reason}` : ''}`}` : 'not running'}`,
    `store ${r.store.spec}: ${r.store.reachable ? 'reachable' : `unreachable: ${r.store.error}`}`,
    `endpoints ${r.counts.endpoints}, identities ${r.counts.identities ?? '?'}, policies ${r.counts.policies ?? '?'}`,
    'programs:',
    ...r.programs.map((p) => {
      const att = p.attachments;
      const detached = att.filter((a) => a.state === 'detached');
      const where = att.length === 0 ? 'not attached' : `${att.length - detached.length} attached (${[...new Set(att.filter((a) => a.state === 'attached').map((a) => `${a.device} ${a.hook}`))].slice(0, 4).join(', ')}${att.length - detached.length > 4 ? ', …' : ''})`;
      return `  ${p.name.padEnd(15)} id ${String(p.id).padEnd(6)} ${where}${detached.length ? `; DETACHED: ${detached.map((a) => `${a.device} ${a.hook} (link ${a.linkId})`).join(', ')}` : ''}`;
    }),
    'maps:',
    ...r.maps.map((m) => `  ${m.name.padEnd(15)} ${m.type.padEnd(14)} ${m.entries === null ? 'n/a' : `${m.entries}/${m.maxEntries}${m.type.includes('array') ? '' : ` (${((100 * m.entries) / m.maxEntries).toFixed(1)}%)`}`}`),
  ];
  return `${lines.join('\n')}\n`;
}

export function register(program: Command): void {
  program.command('status')
    .description('this node at a glance: kernel features and fallbacks, programs and where they are attached, map fill, agent, store, counts')
    .option('-o, --output <format>', 'table or json', parseOutput, 'table')
    .action(async function (this: Command) {
      const r = await nodeStatus(configOf(this));
      if (this.opts().output === 'json') printJson(r);
      else process.stdout.write(render(r));
    });
}
