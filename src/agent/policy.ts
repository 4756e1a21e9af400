/**
 * NetworkPolicy as an agent feature.
 *
 * A new endpoint is admitted before the datapath knows it (EndpointAdmission): it gets the
 * identity of (namespace, labels) and its own sl_policy entries, compiled from the inputs
 * of the last pass, so its first packet in either direction meets the policy in force.
 * Peers' entries for a new identity follow with the pass the add schedules.
 *
 * Every reconciliation (and whenever policies, namespace labels, identities or published
 * endpoints change in the store):
 *   1. each ready local endpoint gets the cluster-wide identity of (namespace, labels),
 *      written by the endpoint manager into its record and its sl_endpoints entry (the VNI
 *      carries it) when its labels changed;
 *   2. the node's endpoints are published (`endpoints/<node>/<id>`), so other nodes know
 *      each pod's address, identity and ports;
 *   3. the policies are compiled for the local endpoints and sl_policy is made equal to the
 *      result, new entries before stale ones go (a flow both the old and the new policies
 *      allow is never dropped in between);
 *   4. ipcache contributions: every remote pod's /32 with its identity, the CIDR identities
 *      of ipBlocks, and this node's own addresses as "host";
 *   5. dead conntrack entries are deleted.
 * Steps 3 and 4 run only when the fingerprint of their inputs (policy-inputs.ts) differs from
 * the one of the last pass that succeeded; sl_policy is read back for drift only when a check
 * is due, asked for, or the map was replaced or changed size behind the agent's back
 * (map-sync.ts). At 50,000 rules a compile and a read-back cost seconds of CPU; a skip, the
 * store reads and a fingerprint (~10 ms).
 */
import { readEndpointEntries } from '../endpoint/datapath.js';
import { parseEndpointName, type Endpoint } from '../endpoint/types.js';
import { CT_MAP, type CtEntry, type CtKey } from '../datapath/conntrack.js';
import { openMap } from '../datapath/loader.js';
import { pinnedMapState } from '../datapath/map-state.js';
import { syncPolicyMap, writePolicyEntries, type PolicyEntry } from '../datapath/policy-map.js';
import { IdentityAllocator, identityLabels } from '../identity/identity.js';
import { allAddresses } from '../net/ip.js';
import { compilePolicies } from '../policy/compile.js';
import type { PublishedEndpoint } from '../policy/store.js';
import { ENDPOINTS, NAMESPACES, POLICIES } from '../store/keys.js';
import type { Store, Unwatch } from '../store/types.js';
import { Serial } from '../util/serial.js';
import type { AgentContext, AgentFeature, FeatureReport, MapSyncReport, ReconcilePass } from './feature.js';
import { MapSync } from './map-sync.js';
import { compileInputOf, policyInputsFingerprint, policyIpcache, type LocalEndpointInput, type PolicyInputs } from './policy-inputs.js';

/** The cluster-wide inputs of a compile: everything but this node's endpoints. */
type ClusterInputs = Omit<PolicyInputs, 'local'>;


/** The values under `prefix`, by key. */
async function storedValues(store: Store, prefix: string): Promise<Map<string, string>> {
  return new Map((await store.list(prefix)).map((kv) => [kv.key, kv.value]));
}

/** This node's IPv4 addresses but loopback's. */
function ownAddresses(): Set<string> {
  const out = new Set<string>();
  for (const [dev, addrs] of allAddresses()) {
    if (dev === 'lo') continue;
    for (const a of addrs) out.add(a.split('/')[0]!);
  }
  return out;
}

export class PolicyFeature implements AgentFeature {
  readonly name = 'policy';
  private unwatch: Unwatch[] = [];
  lastPolicyIds = new Map<string, number>();
  private knownIdentities = new Set<number>();
  /**
   * When sl_policy needs compiling, reading back or nothing, and the entries of the last
   * compile, what it must hold while the inputs stay the same (created at the first pass).
   */
  private sync: MapSync<ReadonlyMap<string, PolicyEntry>> | undefined;
  /**
   * sl_policy's writers, one at a time: a pass (from choosing its endpoints to its last
   * write) and an admission. Otherwise a pass that chose its endpoints before an admission
   * would delete the admitted endpoint's entries as stale.
   */
  private readonly writer = new Serial();
  /** Endpoints admitted and not yet ready: a pass compiles for them too. */
  private readonly admitted = new Map<number, LocalEndpointInput>();
  /** The cluster-wide inputs of the last pass (admissions compile from them). */
  private lastCluster: ClusterInputs | undefined;

  async start(ctx: AgentContext): Promise<void> {
    for (const prefix of [POLICIES, NAMESPACES, ENDPOINTS, 'identities/ids/']) {
      this.unwatch.push(await ctx.node.store.watch(prefix, (e) => {
        // Our own endpoint records change when we publish them: not a reason to run again.
        if (prefix === ENDPOINTS && e.key.startsWith(`${ENDPOINTS}${ctx.cfg.nodeName}/`)) return;
        // An identity marked as used again changes nothing; a new or removed one does.
        if (prefix === 'identities/ids/' && e.type === 'put' && this.knownIdentities.has(Number(e.key.slice(prefix.length)))) return;
        ctx.scheduleReconcile(`${prefix.replace(/\/.*/, '')} changed`);
      }));
    }
    ctx.registry.collect('sluice_policy_verdicts_total', 'Packets decided by policy, by policy, direction and verdict', 'counter', () => this.verdictSamples(ctx));
    ctx.registry.collect('sluice_ct_entries', 'Live entries in the conntrack table', 'gauge', () => [{ name: 'sluice_ct_entries', value: this.liveCt(ctx).live }]);
  }

  async admit(ctx: AgentContext, ep: Readonly<Endpoint>): Promise<{ identity: number }> {
    const namespace = parseEndpointName(ep.name).namespace;
    const ids = new IdentityAllocator(ctx.node.store);
    const identity = await ids.allocate(namespace, ep.labels);
    const cluster = this.lastCluster ?? await this.readCluster(ctx, ids);
    await this.writer.run(async () => {
      const me: LocalEndpointInput = { id: ep.id, namespace, identity, labels: ep.labels, ports: ep.ports ?? [] };
      const identities = new Map(cluster.identities);
      if (!identities.has(identity)) identities.set(identity, identityLabels(namespace, ep.labels));
      const compiled = compilePolicies(compileInputOf({ ...cluster, identities, local: new Map([[ep.id, me]]) }));
      // New keys only (the endpoint id is new): nothing another endpoint relies on changes.
      writePolicyEntries(ctx.cfg, compiled.entries);
      this.admitted.set(ep.id, me);
    });
    return { identity };
  }

  forget(ctx: AgentContext, ep: Readonly<Endpoint>): void {
    // Its entries are stale now: the next pass removes them.
    if (this.admitted.delete(ep.id)) ctx.scheduleReconcile(`the add of ${ep.name} failed`);
  }

  /** The store's share of the inputs, and this node's addresses. */
  private async readCluster(ctx: AgentContext, ids: IdentityAllocator, endpoints?: Map<string, string>): Promise<ClusterInputs> {
    const store = ctx.node.store;
    return {
      policies: await storedValues(store, POLICIES),
      namespaces: new Map([...await storedValues(store, NAMESPACES)].map(([k, v]) => [k.slice(NAMESPACES.length), v])),
      endpoints: endpoints ?? await storedValues(store, ENDPOINTS),
      identities: await ids.list(),
      addresses: ownAddresses(),
    };
  }

  async stop(): Promise<void> {
    for (const u of this.unwatch) u();
    this.unwatch = [];
  }

  async reconcile(ctx: AgentContext, pass: ReconcilePass = { driftCheck: false }): Promise<FeatureReport> {
    const { cfg, node } = ctx;
    const changed: string[] = [];
    const problems: string[] = [];
    const ids = new IdentityAllocator(node.store);

    // 1. Identities of the local endpoints: allocated without the node lock (a store outage
    // must not hold up adds and deletes), written under it if the endpoint did not change meanwhile.
    const wanted = new Map<number, { identity: number; labels: string }>();
    for (const ep of node.manager.list()) {
      if (ep.state !== 'ready') continue;
      wanted.set(ep.id, { identity: await ids.allocate(parseEndpointName(ep.name).namespace, ep.labels), labels: JSON.stringify(ep.labels) });
    }
    const entries = readEndpointEntries(cfg);
    for (const ep of node.manager.list()) {
      const w = wanted.get(ep.id);
      if (ep.state !== 'ready' || !w || w.labels !== JSON.stringify(ep.labels)) continue;
      if (ep.identity === w.identity && entries.get(ep.ip)?.identity === w.identity) continue;
      if (await node.manager.setIdentity(ep, w.identity)) changed.push(`${ep.name} identity ${w.identity}`);
    }
    const local = node.manager.list().filter((e) => e.state === 'ready' && e.identity !== undefined);

    // 2. Publish this node's endpoints.
    const mine = `${ENDPOINTS}${cfg.nodeName}/`;
    let endpoints = await storedValues(node.store, ENDPOINTS);
    const published = new Map([...endpoints].filter(([key]) => key.startsWith(mine)));
    let wrote = false;
    for (const ep of local) {
      const { namespace } = parseEndpointName(ep.name);
      const rec: PublishedEndpoint = { node: cfg.nodeName, id: ep.id, name: ep.name, namespace, ip: ep.ip, identity: ep.identity!, labels: ep.labels, ports: ep.ports ?? [] };
      const key = `${mine}${ep.id}`;
      const value = JSON.stringify(rec);
      if (published.get(key) !== value) {
        await node.store.put(key, value);
        wrote = true;
      }
      published.delete(key);
    }
    for (const key of published.keys()) {
      await node.store.delete(key);
      wrote = true;
    }
    if (wrote) endpoints = await storedValues(node.store, ENDPOINTS);

    // 3. Compile and apply, when the inputs changed; read sl_policy back when drift is suspected or due.
    const cluster = await this.readCluster(ctx, ids, endpoints);
    this.lastCluster = cluster;
    this.knownIdentities = new Set(cluster.identities.keys());
    const report = await this.writer.run(() => this.apply(ctx, pass, cluster, changed, problems));

    // 5. Conntrack garbage.
    const gc = this.liveCt(ctx, true);
    if (gc.deleted) changed.push(`conntrack: ${gc.deleted} dead entries removed`);
    return { changed, problems, sync: { sl_policy: report } };
  }

  /**
   * Steps 3 and 4 for the ready endpoints and the admitted ones, under the writer lock: an
   * admitted endpoint that is ready now, or gone, is no longer kept apart.
   */
  private async apply(ctx: AgentContext, pass: ReconcilePass, cluster: ClusterInputs, changed: string[], problems: string[]): Promise<MapSyncReport> {
    const { cfg, node } = ctx;
    const all = node.manager.list();
    const ready = all.filter((e) => e.state === 'ready' && e.identity !== undefined);
    const local = new Map<number, LocalEndpointInput>(ready.map((e) => [e.id, { id: e.id, namespace: parseEndpointName(e.name).namespace, identity: e.identity!, labels: e.labels, ports: e.ports ?? [] }]));
    for (const [id, a] of this.admitted) {
      if (local.has(id) || !all.some((e) => e.id === id)) this.admitted.delete(id);
      else local.set(id, a);
    }
    const inputs: PolicyInputs = { ...cluster, local };
    const fp = policyInputsFingerprint(inputs);
    this.sync ??= new MapSync('sl_policy', ctx.driftCheckMs);
    const decision = this.sync.decide(fp, pinnedMapState(cfg, 'sl_policy'), pass.driftCheck);
    const report: MapSyncReport = { ...decision };
    let want = this.sync.wanted();
    if (decision.action === 'apply') {
      const compiled = compilePolicies(compileInputOf(inputs));
      want = compiled.entries;
      this.lastPolicyIds = compiled.policyIds;
      // 4. ipcache contributions: they follow from the same inputs, so the same fingerprint.
      ctx.ipcache.set('policy', { entries: policyIpcache(cfg.nodeName, inputs, compiled.cidrIdentities), fingerprint: fp });
    }
    if (decision.action !== 'skip' && want) {
      try {
        const c = syncPolicyMap(cfg, want);
        Object.assign(report, c);
        if (c.written || c.removed) {
          const what = `sl_policy: ${c.written} written, ${c.removed} removed (${want.size} entries)`;
          changed.push(decision.action === 'verify' ? `${what}: drift repaired (${decision.reason})` : what);
        }
        this.sync.done(fp, pinnedMapState(cfg, 'sl_policy'), want);
      } catch (e) {
        this.sync.failed();
        problems.push(`sl_policy: ${(e as Error).message}`);
      }
    }
    return report;
  }

  /** Counts live conntrack entries; with `collect`, deletes the dead ones. */
  private liveCt(ctx: AgentContext, collect = false): { live: number; deleted: number } {
    const m = openMap<CtKey, CtEntry>(ctx.cfg, CT_MAP);
    const now = process.hrtime.bigint();
    let live = 0;
    let deleted = 0;
    try {
      // Walk first, delete after: bpf_map_get_next_key from a key just deleted starts over
      // at the first key, which made this quadratic (tens of seconds at a few thousand flows).
      const dead: CtKey[] = [];
      for (const [k, v] of m.entries()) {
        if (v.expires > now) live++;
        else if (collect) dead.push(k);
      }
      for (const k of dead) if (m.delete(k)) deleted++;
    } finally {
      m.close();
    }
    return { live, deleted };
  }

  private verdictSamples(ctx: AgentContext) {
    const names = new Map([...this.lastPolicyIds].map(([ref, id]) => [id, ref]));
    const m = openMap<{ policy: number; dir: number; allowed: number }, { packets: bigint; bytes: bigint }[]>(ctx.cfg, 'sl_policy_st');
    try {
      return [...m.entries()].map(([k, v]) => ({
        name: 'sluice_policy_verdicts_total',
        labels: { policy: names.get(k.policy) ?? String(k.policy), direction: k.dir === 1 ? 'ingress' : 'egress', verdict: k.allowed ? 'allowed' : 'denied' },
        value: Number(v.reduce((a, x) => a + x.packets, 0n)),
      }));
    } finally {
      m.close();
    }
  }
}
