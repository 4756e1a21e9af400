/**
 * Datapath events as an agent feature. The agent is the ring buffer's one reader (two
 * readers would steal records from each other); `GET /v1/monitor?type=…&pod=NS/NAME`
 * streams them, named, one JSON document per line, to any number of `sluice monitor`s.
 * The buffer is drained every 50 ms without blocking; trace events are turned on in the
 * datapath only while a client asks for them; events the datapath's rate limit or a full
 * ring kept out are reported to clients as `{type: "lost", …}` lines and counted in
 * sluice_monitor_events_total.
 */
import type { LostEvents } from '../api/types.js';
import { EventNames, type NamedEvent } from '../inspect/events.js';
import { EVENT_TYPES, openEvents, type EventType, type RawEvent } from '../maps/events.js';
import { readEventCounters, type EventCounters } from '../maps/monitor-state.js';
import { writeMonitorSettings } from '../maps/monitor.js';
import { ApiError } from './errors.js';
import type { AgentContext, AgentFeature } from './feature.js';
import type { Route, StreamOut } from './server.js';

const DRAIN_MS = 50;
const LOST_CHECK_MS = 1000;
/** Events waiting to be named and sent; beyond this the agent drops them (and says so). */
const MAX_PENDING = 10_000;

interface Subscriber {
  types: ReadonlySet<EventType>;
  pod: string | undefined;
  out: StreamOut;
}

/** Whether a subscriber asking for `types` wants event `e` (a policy drop is also a policy verdict). */
export function wanted(types: ReadonlySet<EventType>, e: Pick<RawEvent, 'type' | 'reason'>): boolean {
  if (types.has(e.type)) return true;
  return e.type === 'drop' && types.has('policy-verdict') && e.reason.startsWith('drop_policy_');
}

/** Parses ?type=drop,trace&pod=ns/name; an ApiError naming the bad value otherwise. */
export function monitorQuery(q: URLSearchParams): { types: Set<EventType>; pod: string | undefined } {
  const raw = q.getAll('type').flatMap((t) => t.split(',')).map((t) => t.trim()).filter(Boolean);
  const bad = raw.filter((t) => !(EVENT_TYPES as readonly string[]).includes(t));
  if (bad.length) throw new ApiError(400, 'invalid_request', `unknown event type ${bad.map((b) => `'${b}'`).join(', ')} (types: ${EVENT_TYPES.join(', ')})`);
  const pod = q.get('pod') ?? undefined;
  if (pod !== undefined && !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?\/[^/\s]+$/.test(pod)) {
    throw new ApiError(400, 'invalid_request', `pod '${pod}' is not NAMESPACE/NAME`);
  }
  return { types: new Set(raw.length ? (raw as EventType[]) : EVENT_TYPES), pod };
}

export class MonitorFeature implements AgentFeature {
  readonly name = 'monitor';
  private reader: ReturnType<typeof openEvents> | undefined;
  private problem: string | undefined;
  private readonly subs = new Set<Subscriber>();
  private names: EventNames | undefined;
  private chain: Promise<void> = Promise.resolve();
  private pending = 0;
  private droppedInAgent = 0;
  private droppedReported = 0;
  private lastCounters: EventCounters | undefined;
  private timer: NodeJS.Timeout | undefined;
  private trace = false;
  private ctx: AgentContext | undefined;

  async start(ctx: AgentContext): Promise<void> {
    this.ctx = ctx;
    this.names = new EventNames({
      nodeName: ctx.cfg.nodeName, store: ctx.node.store, localEndpoints: () => ctx.node.manager.list(),
      ipcache: () => [...ctx.ipcache.values()].map((c) => c.entries),
    });
    try {
      writeMonitorSettings(ctx.cfg, { trace: false, rate: 0 });
      this.reader = openEvents(ctx.cfg, (e) => this.onEvent(e));
      this.reader.start(DRAIN_MS, (e) => ctx.log(`monitor: reading events: ${e.message}`));
      this.lastCounters = readEventCounters(ctx.cfg);
    } catch (e) {
      this.problem = `datapath events are not available: ${(e as Error).message}`;
      ctx.log(`monitor: ${this.problem}`);
    }
    this.timer = setInterval(() => this.reportLost(), LOST_CHECK_MS);
    this.timer.unref();
    ctx.registry.collect('sluice_monitor_events_total', 'Datapath events by result: sent to the ring buffer, or lost to the rate limit, a full ring buffer, or the agent\'s backlog', 'counter', () => {
      const c = readEventCounters(ctx.cfg);
      return [
        { name: 'sluice_monitor_events_total', labels: { result: 'sent' }, value: c.sent },
        { name: 'sluice_monitor_events_total', labels: { result: 'rate_limited' }, value: c.rateLimited },
        { name: 'sluice_monitor_events_total', labels: { result: 'ring_full' }, value: c.ringFull },
        { name: 'sluice_monitor_events_total', labels: { result: 'agent_backlog' }, value: this.droppedInAgent },
      ];
    });
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    for (const s of this.subs) s.out.end();
    this.subs.clear();
    this.reader?.close();
    this.reader = undefined;
    if (this.trace && this.ctx) {
      try {
        writeMonitorSettings(this.ctx.cfg, { trace: false, rate: 0 });
      } catch { /* the datapath may be gone */ }
    }
  }

  routes(): Route[] {
    return [{
      method: 'GET', path: '/v1/monitor',
      stream: (q) => {
        const { types, pod } = monitorQuery(q);
        if (!this.reader) throw new ApiError(503, 'not_ready', this.problem ?? 'datapath events are not available');
        return (out) => {
          const sub: Subscriber = { types, pod, out };
          this.subs.add(sub);
          this.updateTrace();
          out.onClose(() => {
            this.subs.delete(sub);
            this.updateTrace();
          });
        };
      },
    }];
  }

  private updateTrace(): void {
    const want = [...this.subs].some((s) => s.types.has('trace'));
    if (want === this.trace || !this.ctx) return;
    try {
      writeMonitorSettings(this.ctx.cfg, { trace: want, rate: 0 });
      this.trace = want;
    } catch (e) {
      this.ctx.log(`monitor: turning tracing ${want ? 'on' : 'off'}: ${(e as Error).message}`);
    }
  }

  private onEvent(e: RawEvent): void {
    if (this.subs.size === 0 || ![...this.subs].some((s) => wanted(s.types, e))) return;
    if (this.pending >= MAX_PENDING) {
      this.droppedInAgent++;
      return;
    }
    this.pending++;
    // One at a time, in order: naming may read the store.
    this.chain = this.chain.then(async () => {
      try {
        const named = await this.names!.name(e);
        for (const s of this.subs) if (wanted(s.types, e) && this.podMatches(s, named)) s.out.write(named);
      } finally {
        this.pending--;
      }
    }).catch((err: Error) => this.ctx?.log(`monitor: ${err.message}`));
  }

  private podMatches(s: Subscriber, e: NamedEvent): boolean {
    return s.pod === undefined || e.src.pod === s.pod || e.dst.pod === s.pod;
  }

  /** Tells clients about events lost since the last check. */
  private reportLost(): void {
    if (!this.ctx || !this.reader) return;
    let c: EventCounters;
    try {
      c = readEventCounters(this.ctx.cfg);
    } catch {
      return;
    }
    const last = this.lastCounters ?? c;
    this.lastCounters = c;
    const rateLimited = c.rateLimited - last.rateLimited;
    const ringFull = c.ringFull - last.ringFull;
    const agent = this.droppedInAgent - this.droppedReported;
    this.droppedReported = this.droppedInAgent;
    if (rateLimited > 0 || ringFull > 0 || agent > 0) {
      const doc: LostEvents = { time: new Date().toISOString(), node: this.ctx.cfg.nodeName, type: 'lost', rateLimited, ringFull, agentBacklog: agent };
      for (const s of this.subs) s.out.write(doc);
    }
  }
}
