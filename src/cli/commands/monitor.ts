import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import type { EventEnd } from '../../inspect/events.js';
import { EVENT_TYPES } from '../../maps/events.js';
import type { MonitorLine } from '../../api/types.js';
import { requireAgent } from '../agent-access.js';
import { configOf } from '../context.js';
import { parseOutput } from '../output.js';

function parseType(v: string, prev: string[] = []): string[] {
  for (const t of v.split(',')) {
    if (!(EVENT_TYPES as readonly string[]).includes(t)) throw new InvalidArgumentError(`unknown event type '${t}' (types: ${EVENT_TYPES.join(', ')})`);
  }
  return [...prev, ...v.split(',')];
}

function parseCount(v: string): number {
  if (!/^\d+$/.test(v) || Number(v) < 1) throw new InvalidArgumentError(`'${v}' is not a positive whole number`);
  return Number(v);
}

function end(e: EventEnd): string {
  const addr = e.port !== undefined ? `${e.ip}:${e.port}` : e.ip;
  const who = e.pod ?? e.labels ?? (e.identity ? `identity ${e.identity}` : '');
  return who ? `${addr} (${who})` : addr;
}

/** One line per event: time, node, what, 5-tuple with pods, why. */
export function formatEvent(e: MonitorLine): string {
  const time = e.time.slice(11, 23);
  if (e.type === 'lost') {
    const parts = [e.rateLimited && `${e.rateLimited} over the rate limit`, e.ringFull && `${e.ringFull} to a full ring buffer`, e.agentBacklog && `${e.agentBacklog} to the agent's backlog`].filter(Boolean);
    return `${time} ${e.node} LOST ${parts.join(', ')}`;
  }
  const what = e.type === 'drop' ? `DROP ${e.reason}` : e.type === 'trace' ? `TRACE ${e.reason}` : 'ALLOWED by policy';
  const policy = e.policy ? ` policy ${e.policy}` : '';
  return `${time} ${e.node} ${what} ${e.direction} ${e.protocol || 'non-IP'} ${end(e.src)} -> ${end(e.dst)}${policy}${e.device ? ` on ${e.device}` : ''} len ${e.len}`;
}

export function register(program: Command): void {
  program.command('monitor')
    .description('stream datapath events from this node\'s agent: drops with their reason, policy verdicts with the deciding policy, and packet traces')
    .option('--type <type>', `event types, repeatable or comma-separated: ${EVENT_TYPES.join(', ')} (default: all; trace turns tracing on in the datapath while you watch)`, parseType)
    .option('--pod <ns/name>', 'only events to or from this pod')
    .option('-n, --count <n>', 'exit after this many events', parseCount)
    .option('--timeout <seconds>', 'exit after this many seconds', parseCount)
    .option('-o, --output <format>', 'table (one line per event) or json (one JSON document per line)', parseOutput, 'table')
    .action(async function (this: Command) {
      const cfg = configOf(this);
      const o = this.opts() as { type?: string[]; pod?: string; count?: number; timeout?: number; output: string };
      const agent = await requireAgent(cfg, 'events are read by the agent (start it with `sluice agent`)');
      const q = new URLSearchParams();
      if (o.type) q.set('type', [...new Set(o.type)].join(','));
      if (o.pod) q.set('pod', o.pod);
      const ac = new AbortController();
      let seen = 0;
      let timer: NodeJS.Timeout | undefined;
      if (o.timeout) timer = setTimeout(() => ac.abort(), o.timeout * 1000);
      for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => ac.abort());
      process.stderr.write(`sluice: monitoring node ${cfg.nodeName} (${o.type ? [...new Set(o.type)].join(', ') : 'all events'}${o.pod ? `, pod ${o.pod}` : ''}); Ctrl-C to stop\n`);
      try {
        await agent.stream(`/v1/monitor?${q}`, (doc) => {
          const e = doc as MonitorLine;
          process.stdout.write(o.output === 'json' ? `${JSON.stringify(e)}\n` : `${formatEvent(e)}\n`);
          if (e.type !== 'lost' && o.count && ++seen >= o.count) ac.abort();
        }, ac.signal);
      } finally {
        if (timer) clearTimeout(timer);
      }
    });
}
