/**
 * Puts names on the numbers of datapath events (for `sluice monitor`): pods for addresses
 * (this node's endpoints and the ones other nodes publish), device names for ifindexes, and
 * identities and policy ids through the one namer (names.ts). Each table is read from the
 * store or the system once and read again when a number is missing from it, at most every
 * few seconds, so a flood of events about unknown numbers cannot turn into a flood of store
 * reads.
 */
import type { Endpoint } from '../endpoint/types.js';
import { IdentityAllocator } from '../identity/identity.js';
import type { RawEvent } from '../maps/events.js';
import { listLinks } from '../net/ip.js';
import { parsePublishedEndpoint, policyRefsById } from '../policy/store.js';
import { parseRecords } from '../store/record.js';
import { ENDPOINTS } from '../store/keys.js';
import type { Store } from '../store/types.js';
import type { Labels } from '../util/labels.js';
import { allocatedIdentity, Names } from './names.js';

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

  /** What the table holds now, without reading anything. */
  peek(k: K): V | undefined {
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

/** What the event names are read from. */
export interface EventNameSources {
  nodeName: string;
  store: Store;
  /** This node's endpoints (their addresses name pods before their records are published). */
  localEndpoints(): readonly Pick<Endpoint, 'ip' | 'name'>[];
  /** The ipcache entries the agent computed, by source: where CIDR identities are found. */
  ipcache(): Iterable<ReadonlyMap<string, { identity: number }>>;
}

export class EventNames {
  private readonly pods: Table<string, string>;
  private readonly identities: Table<number, Labels>;
  private readonly policies: Table<number, string>;
  private readonly devices: Table<number, string>;
  private readonly names: Names;

  constructor(private readonly src: EventNameSources) {
    this.pods = new Table(async () => {
      const m = new Map<string, string>();
      for (const e of parseRecords(await src.store.list(ENDPOINTS), parsePublishedEndpoint).records) m.set(e.ip, e.name);
      for (const e of src.localEndpoints()) if (e.ip) m.set(e.ip, e.name);
      return m;
    });
    this.identities = new Table(() => new IdentityAllocator(src.store).list());
    this.policies = new Table(() => policyRefsById(src.store));
    this.devices = new Table(async () => new Map(listLinks().map((l) => [l.ifindex, l.name])));
    this.names = new Names({
      identityLabels: (id) => this.identities.peek(id),
      cidr: (id) => {
        for (const entries of src.ipcache()) for (const [cidr, e] of entries) if (e.identity === id) return cidr;
        return undefined;
      },
      policy: (id) => this.policies.peek(id),
      endpoint: () => undefined,
    });
  }

  private async end(ip: string, port: number, identity: number, withPorts: boolean): Promise<EventEnd> {
    const pod = await this.pods.get(ip);
    if (allocatedIdentity(identity)) await this.identities.get(identity);
    const labels = this.names.labels(identity);
    return {
      ip, ...(withPorts ? { port } : {}), ...(pod ? { pod } : {}),
      ...(identity ? { identity } : {}), ...(labels ? { labels } : {}),
    };
  }

  async name(e: RawEvent): Promise<NamedEvent> {
    const withPorts = e.protocol === 'TCP' || e.protocol === 'UDP' || e.protocol === 'SCTP';
    if (e.policyId) await this.policies.get(e.policyId);
    const policy = e.policyId ? this.names.policy(e.policyId) : undefined;
    const device = await this.devices.get(e.ifindex);
    return {
      time: new Date(e.time).toISOString(),
      node: this.src.nodeName,
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
