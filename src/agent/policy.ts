/**
 * NetworkPolicy as an agent feature. Every reconciliation (and whenever policies,
 * namespace labels, identities or published endpoints change in the store):
 *   1. each ready local endpoint gets the cluster-wide identity of (namespace, labels),
 *      written into its record and its sl_endpoints entry (the VNI carries it);
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
import { readEndpointEntries, writeEndpointEntry } from '../endpoint/datapath.js';
import { parseEndpointName } from '../endpoint/types.js';
import { openMap } from '../datapath/loader.js';
import { pinnedMapState } from '../datapath/map-state.js';
import { syncPolicyMap, type PolicyEntry } from '../datapath/policy-map.js';
import { IdentityAllocator } from '../identity/identity.js';
import { allAddresses } from '../net/ip.js';
import { compilePolicies } from '../policy/compile.js';
import { ENDPOINTS, NAMESPACES, POLICIES, type PublishedEndpoint } from '../policy/store.js';
import type { Store, Unwatch } from '../store/types.js';
import type { AgentContext, AgentFeature, FeatureReport, MapSyncReport, ReconcilePass } from './feature.js';
import { MapSync } from './map-sync.js';
import { compileInputOf, policyInputsFingerprint, policyIpcache, type PolicyInputs } from './policy-inputs.js';

interface CtKey { saddr: string; daddr: string; sport: number; dport: number; protocol: number }
interface CtEntry { expires: bigint }

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
    await node.manager.state.lockedAsync(async () => {
      const entries = readEndpointEntries(cfg);
      for (const ep of node.manager.list()) {
        const w = wanted.get(ep.id);
        if (ep.state !== 'ready' || !w || w.labels !== JSON.stringify(ep.labels)) continue;
        if (ep.identity === w.identity && entries.get(ep.ip)?.identity === w.identity) continue;
        const next = { ...ep, identity: w.identity };
        node.manager.state.saveEndpoint(next);
        writeEndpointEntry(cfg, next);
        changed.push(`${ep.name} identity ${w.identity}`);
      }
    });
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
    const inputs: PolicyInputs = {
      policies: await storedValues(node.store, POLICIES),
      namespaces: new Map([...await storedValues(node.store, NAMESPACES)].map(([k, v]) => [k.slice(NAMESPACES.length), v])),
      endpoints,
      identities: await ids.list(),
      local: new Map(local.map((e) => [e.id, { id: e.id, namespace: parseEndpointName(e.name).namespace, identity: e.identity!, labels: e.labels, ports: e.ports ?? [] }])),
      addresses: ownAddresses(),
    };
    this.knownIdentities = new Set(inputs.identities.keys());
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

    // 5. Conntrack garbage.
    const gc = this.liveCt(ctx, true);
    if (gc.deleted) changed.push(`conntrack: ${gc.deleted} dead entries removed`);
    return { changed, problems, sync: { sl_policy: report } };
  }

  /** Counts live conntrack entries; with `collect`, deletes the dead ones. */
  private liveCt(ctx: AgentContext, collect = false): { live: number; deleted: number } {
    const m = openMap<CtKey, CtEntry>(ctx.cfg, 'sl_ct');
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
