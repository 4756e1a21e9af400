import type { Command } from 'commander';
import { Agent, DEFAULT_DRIFT_CHECK_MS } from '../../agent/agent.js';
import type { AgentStatus, ReconcileRequest, ReconcileResponse } from '../../api/types.js';
import { callAgent, requireAgent } from '../agent-access.js';
import { configOf } from '../context.js';
import { parseOutput, printJson } from '../output.js';

function seconds(flag: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!/^\d+(\.\d+)?$/.test(v) || !Number.isFinite(n)) throw new Error(`${flag} ${v}: expected a number of seconds`);
    return n;
  };
}

export function register(program: Command): void {
  const agent = program.command('agent')
    .description("run the node agent: owns the node's datapath and endpoints, serves the CLI and the CNI plugin on <runDir>/agent.sock")
    .option('--reconcile-interval <seconds>', 'periodic reconciliation (0: only at start and on changes)', seconds('--reconcile-interval'), 30)
    .option('--drift-check-interval <seconds>',
      'how often a reconciliation whose inputs did not change still reads sl_policy and sl_ipcache back to repair '
      + 'entries edited behind the agent\'s back (0: every pass). Passes in between skip the policy compile and the map '
      + 'reads; a map whose entry count changed is read back at the next pass whatever this says',
      seconds('--drift-check-interval'), DEFAULT_DRIFT_CHECK_MS / 1000)
    .option('--node-ttl <seconds>', "TTL of the node's record in the store", seconds('--node-ttl'), 15)
    .action(async function (this: Command) {
      const o = this.opts<{ reconcileInterval: number; driftCheckInterval: number; nodeTtl: number }>();
      const a = new Agent(configOf(this), {
        reconcileIntervalMs: o.reconcileInterval * 1000, driftCheckIntervalMs: o.driftCheckInterval * 1000, nodeTtlSeconds: Math.max(2, Math.round(o.nodeTtl)),
      });
      await a.start();
      await new Promise<void>((resolve) => {
        const stop = (sig: string) => {
          process.stderr.write(`${new Date().toISOString()} sluice-agent[${a.cfg.nodeName}]: ${sig}: shutting down (the datapath keeps running)\n`);
          a.stop().finally(resolve);
        };
        process.once('SIGTERM', () => stop('SIGTERM'));
        process.once('SIGINT', () => stop('SIGINT'));
      });
    });

  agent.command('status')
    .description("the running agent's status (exit 1 when none answers or it is not ready)")
    .option('-o, --output <format>', 'table or json', parseOutput, 'table')
    .action(async function (this: Command) {
      const cfg = configOf(this);
      const a = await requireAgent(cfg);
      const s = await callAgent<AgentStatus>(a, 'GET', '/v1/status');
      if (this.opts().output === 'json') printJson(s);
      else {
        process.stdout.write(`agent of node ${s.node} (pid ${s.pid}): ${s.ready ? 'ready' : `not ready: ${s.reason ?? '?'}`}\n`
          + `pod block ${s.podCIDR}, ${s.endpoints} endpoint(s), store ${s.store}, metrics ${s.metrics ? `http://${s.metrics}/metrics` : 'off'}\n`);
      }
      if (!s.ready) process.exitCode = 1;
    });

  agent.command('reconcile')
    .description('ask the running agent to reconcile now and print what it repaired')
    .option('--no-drift-check', 'a pass like the periodic one: sl_policy and sl_ipcache are read back only if their inputs '
      + 'changed, their entry count changed or a drift check is due (default: read them back and repair them)')
    .option('-o, --output <format>', 'table or json', parseOutput, 'table')
    .action(async function (this: Command) {
      const cfg = configOf(this);
      const a = await requireAgent(cfg);
      const req: ReconcileRequest = { driftCheck: this.opts<{ driftCheck: boolean }>().driftCheck };
      const r = await callAgent<ReconcileResponse>(a, 'POST', '/v1/reconcile', req);
      if (this.opts().output === 'json') return printJson(r);
      for (const [k, v] of Object.entries(r)) {
        if (Array.isArray(v) && v.length) process.stdout.write(`${k}: ${v.join(', ')}\n`);
      }
      // What the features did with the maps they keep in sync (skipped, applied, verified).
      for (const f of Object.values(r.features ?? {})) {
        for (const [map, x] of Object.entries(f.sync ?? {})) {
          process.stdout.write(`${map}: ${x.action} (${x.reason})${x.written !== undefined ? `: ${x.written} written, ${x.removed ?? 0} removed` : ''}\n`);
        }
      }
      process.stdout.write(`${String(r.endpoints)} endpoint(s), ${Number(r.durationMs).toFixed(1)} ms\n`);
    });
}
