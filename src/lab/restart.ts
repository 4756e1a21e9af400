/**
 * Restarting a lab's agents, optionally with another mode: each node's config gets the new
 * `mode`, its agent is stopped (SIGTERM, or SIGKILL to simulate a crash) and started again,
 * and the lab's record follows (new PIDs, the plan's mode). Pods stay as they are: that is
 * what a mode switch on a running cluster must survive. With `upgrade`, each agent starts
 * again from this build of sluice instead of the one that started it: an upgrade of a
 * running node (the new agent loads its datapath over the old one; see
 * src/maps/migrate.ts).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { MODES, type Mode } from '../config/config.js';
import { spawnDetached, stopProcess, pidsOf } from './procs.js';
import { readState, writeState, labRoot, type LabState } from './state.js';
import { labTools } from './tools.js';
import { waitAgent } from './up.js';
import type { PlanTools } from './plan.js';

export interface RestartOptions {
  name: string;
  /** Only these nodes (default: all). */
  nodes?: string[];
  mode?: Mode;
  /** SIGKILL instead of SIGTERM. */
  kill?: boolean;
  /** Start the agents from this build of sluice (and this Node.js). */
  upgrade?: boolean;
  log?: (line: string) => void;
}

export async function labRestartAgents(o: RestartOptions): Promise<LabState> {
  const state = readState(labRoot(), o.name);
  if (!state || state.phase !== 'up') throw new Error(`lab ${o.name} is not up (see \`sluice lab status\`)`);
  if (o.mode && !MODES.includes(o.mode)) throw new Error(`mode '${o.mode}': expected one of ${MODES.join(', ')}`);
  const log = o.log ?? (() => {});
  const names = o.nodes?.length ? o.nodes : state.plan.nodes.map((n) => n.name);
  const unknown = names.filter((n) => !state.plan.nodes.some((p) => p.name === n));
  if (unknown.length) throw new Error(`no node ${unknown.join(', ')} in lab ${o.name} (nodes: ${state.plan.nodes.map((n) => n.name).join(', ')})`);
  for (const name of names) {
    const n = state.plan.nodes.find((p) => p.name === name)!;
    const rec = state.processes.find((p) => p.role === 'agent' && p.node === name);
    if (!rec) throw new Error(`lab ${o.name} has no agent record for node ${name}`);
    if (o.mode) {
      const text = readFileSync(n.config, 'utf8');
      const next = /^mode: .*$/m.test(text) ? text.replace(/^mode: .*$/m, `mode: ${o.mode}`) : `${text}mode: ${o.mode}\n`;
      writeFileSync(n.config, next);
      n.configText = next;
    }
    if (o.kill) for (const pid of pidsOf(rec)) process.kill(pid, 'SIGKILL');
    await stopProcess(rec);
    if (o.upgrade) {
      rec.argv = upgradedArgv(rec.argv, labTools());
      rec.cmdline = rec.argv.slice(2);
      n.agentArgv = rec.argv;
    }
    const p = spawnDetached(rec.argv, rec.log);
    rec.pid = p.pid;
    writeState(state);
    const s = await waitAgent(n, p, new AbortController().signal, 120_000);
    state.podCIDRs[name] = s.podCIDR;
    log(`node ${name}: agent ${o.kill ? 'killed' : 'stopped'} and ready again (pid ${p.pid})${o.mode ? `, mode ${o.mode}` : ''}${o.upgrade ? `, from ${rec.argv[3]}` : ''}`);
  }
  if (o.mode && names.length === state.plan.nodes.length) state.plan.mode = o.mode;
  writeState(state);
  return state;
}

/**
 * An agent's argv (nsenter --net=NS NODE SLUICE --config C agent) with this build's
 * Node.js and sluice in place of the ones that started it.
 */
export function upgradedArgv(argv: readonly string[], tools: Pick<PlanTools, 'node' | 'sluice'>): string[] {
  if (argv[0] !== 'nsenter' || !argv[1]?.startsWith('--net=') || argv.length < 4 || argv[argv.length - 1] !== 'agent') {
    throw new Error(`not a lab agent's command line: ${argv.join(' ')}`);
  }
  return [argv[0], argv[1], tools.node, tools.sluice, ...argv.slice(4)];
}
