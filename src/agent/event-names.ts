/**
 * Puts names on the numbers of datapath events: pods for addresses (this node's endpoints
 * and the ones other nodes publish), labels for identities, "namespace/name" for policy
 * ids, device names for ifindexes. Each table is read from the store or the system once
 * and read again when a number is missing from it, at most every few seconds, so a flood
 * of events about unknown numbers cannot turn into a flood of store reads.
 */
import { RESERVED_NAMES, FIRST_CIDR_IDENTITY, IdentityAllocator } from '../identity/identity.js';
import { listLinks } from '../net/ip.js';
import { policyRefsById, type PublishedEndpoint } from '../policy/store.js';
import { ENDPOINTS } from '../store/keys.js';
import { formatLabels, type Labels } from '../util/labels.js';
import type { RawEvent } from '../datapath/events.js';
import type { AgentContext } from './feature.js';

const REFRESH_MS = 3000;

/** A table refreshed on a miss, at most every REFRESH_MS. */
class Table<K, V> {
  private map = new Map<K, V>();
  private at = 0;
  private loading: Promise<void> | undefined;

  constructor(private readonly load: () => Promise<Map<K, V>>) {}

  async get(k: K): Promise<V | undefined> {
    if (!this.map.has(k) && Date.now() - this.at > REFRESH_MS) {
      this.loading ??= this.load().then((m) => {
        this.map = m;
      }).catch(() => { /* keep the old table; the event is still shown, with numbers */ }).finally(() => {
        this.at = Date.now();
        this.loading = undefined;
      });
      await this.loading;
    }
    return this.map.get(k);
  }
}

export interface EventEnd {
  ip: string;
  port?: number;
  /** "namespace/name" of the pod with this address, when known. */
  pod?: string;
  identity?: number;
  /** The identity's labels (k=v,…) or reserved name. */
  labels?: string;
}

export interface NamedEvent {
  time: string;
  node: string;
  type: RawEvent['type'];
  direction: string;
  reason?: string;
  protocol: string;
  src: EventEnd;
  dst: EventEnd;
  policy?: string;
  device?: string;
  len: number;
}

export class EventNames {
  private readonly pods: Table<string, string>;
  private readonly identities: Table<number, Labels>;
  private readonly policies: Table<number, string>;
  private readonly devices: Table<number, string>;

  constructor(private readonly ctx: AgentContext) {
    this.pods = new Table(async () => {
      const m = new Map<string, string>();
      for (const kv of await ctx.node.store.list(ENDPOINTS)) {
        const e = JSON.parse(kv.value) as PublishedEndpoint;
        m.set(e.ip, e.name);
      }
      for (const e of ctx.node.manager.list()) if (e.ip) m.set(e.ip, e.name);
      return m;
    });
    this.identities = new Table(() => new IdentityAllocator(ctx.node.store).list());
    this.policies = new Table(() => policyRefsById(ctx.node.store));
    this.devices = new Table(async () => new Map(listLinks().map((l) => [l.ifindex, l.name])));
  }

  private async identityName(id: number): Promise<string | undefined> {
    if (id === 0) return undefined;
    if (RESERVED_NAMES[id]) return RESERVED_NAMES[id];
    if (id >= FIRST_CIDR_IDENTITY) {
      for (const { entries } of this.ctx.ipcache.values()) for (const [cidr, e] of entries) if (e.identity === id) return `cidr:${cidr}`;
      return 'cidr';
    }
    const labels = await this.identities.get(id);
    return labels ? formatLabels(labels) : undefined;
  }

  private async end(ip: string, port: number, identity: number, withPorts: boolean): Promise<EventEnd> {
    const pod = await this.pods.get(ip);
    const labels = await this.identityName(identity);
    return {
      ip, ...(withPorts ? { port } : {}), ...(pod ? { pod } : {}),
      ...(identity ? { identity } : {}), ...(labels ? { labels } : {}),
    };
  }

  async name(e: RawEvent): Promise<NamedEvent> {
    const withPorts = e.protocol === 'TCP' || e.protocol === 'UDP' || e.protocol === 'SCTP';
    const policy = e.policyId ? (await this.policies.get(e.policyId)) ?? `id:${e.policyId}` : undefined;
    const device = await this.devices.get(e.ifindex);
    return {
      time: new Date(e.time).toISOString(),
      node: this.ctx.cfg.nodeName,
      type: e.type,
      direction: e.direction,
      ...(e.reason ? { reason: e.reason } : {}),
      protocol: e.protocol,
      src: await this.end(e.saddr, e.sport, e.srcIdentity, withPorts),
      dst: await this.end(e.daddr, e.dport, e.dstIdentity, withPorts),
      ...(policy ? { policy } : {}),
      ...(device ? { device } : {}),
      len: e.len,
    };
  }
}
