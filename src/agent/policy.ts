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
 */
import { readEndpointEntries, writeEndpointEntry } from '../endpoint/datapath.js';
import type { PodPort } from '../endpoint/ports.js';
import { parseEndpointName } from '../endpoint/types.js';
import { openMap } from '../datapath/loader.js';
import type { IpcacheEntry } from '../datapath/ipcache.js';
import { IDENTITY, IdentityAllocator } from '../identity/identity.js';
import { allAddresses } from '../net/ip.js';
import { compilePolicies, type PolicyKey, type PolicyValue } from '../policy/compile.js';
import { ENDPOINTS, listPolicies, namespaceLabels, NAMESPACES, POLICIES, type PublishedEndpoint } from '../policy/store.js';
import type { Unwatch } from '../store/types.js';
import type { AgentContext, AgentFeature, FeatureReport } from './feature.js';


interface CtKey { saddr: string; daddr: string; sport: number; dport: number; protocol: number }
interface CtEntry { expires: bigint }

const NONE: IpcacheEntry['flags'] = 0;

export class PolicyFeature implements AgentFeature {
  readonly name = 'policy';
  private unwatch: Unwatch[] = [];
  lastPolicyIds = new Map<string, number>();
  private knownIdentities = new Set<number>();

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

  async reconcile(ctx: AgentContext): Promise<FeatureReport> {
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
    const published = new Map((await node.store.list(mine)).map((kv) => [kv.key, kv.value]));
    for (const ep of local) {
      const { namespace } = parseEndpointName(ep.name);
      const rec: PublishedEndpoint = { node: cfg.nodeName, id: ep.id, name: ep.name, namespace, ip: ep.ip, identity: ep.identity!, labels: ep.labels, ports: ep.ports ?? [] };
      const key = `${mine}${ep.id}`;
      const value = JSON.stringify(rec);
      if (published.get(key) !== value) await node.store.put(key, value);
      published.delete(key);
    }
    for (const key of published.keys()) await node.store.delete(key);

    // 3. Compile and apply.
    const all = (await node.store.list(ENDPOINTS)).map((kv) => JSON.parse(kv.value) as PublishedEndpoint);
    const identityPorts = new Map<number, PodPort[]>();
    for (const e of all) identityPorts.set(e.identity, [...(identityPorts.get(e.identity) ?? []), ...e.ports]);
    const identities = await ids.list();
    this.knownIdentities = new Set(identities.keys());
    const compiled = compilePolicies({
      policies: await listPolicies(node.store),
      namespaces: await namespaceLabels(node.store),
      identities,
      identityPorts,
      endpoints: local.map((e) => ({ id: e.id, namespace: parseEndpointName(e.name).namespace, labels: e.labels, ports: e.ports ?? [] })),
    });
    this.lastPolicyIds = compiled.policyIds;
    const m = openMap<PolicyKey, PolicyValue>(cfg, 'sl_policy');
    try {
      const have = new Map<string, { key: PolicyKey; value: PolicyValue }>();
      for (const [k, v] of m.entries()) have.set(`${k.endpoint}/${k.identity}/${k.dir}/${k.protocol}/${k.dport}/${k.prefixlen}`, { key: k, value: v });
      let added = 0;
      let removed = 0;
      for (const [s, { key, value }] of compiled.entries) {
        const h = have.get(s);
        if (h && h.value.policy === value.policy && h.value.flags === value.flags) continue;
        m.update(key, value);
        added++;
      }
      for (const [s, { key }] of have) {
        if (compiled.entries.has(s)) continue;
        m.delete(key);
        removed++;
      }
      if (added || removed) changed.push(`sl_policy: ${added} written, ${removed} removed (${compiled.entries.size} entries)`);
    } catch (e) {
      problems.push(`sl_policy: ${(e as Error).message}`);
    } finally {
      m.close();
    }

    // 4. ipcache contributions.
    const contrib = new Map<string, IpcacheEntry>();
    for (const e of all) if (e.node !== cfg.nodeName) contrib.set(`${e.ip}/32`, { identity: e.identity, tunnel_endpoint: '0.0.0.0', flags: NONE });
    for (const [cidr, id] of compiled.cidrIdentities) contrib.set(cidr, { identity: id, tunnel_endpoint: '0.0.0.0', flags: NONE });
    for (const [dev, addrs] of allAddresses()) {
      if (dev === 'lo') continue;
      for (const a of addrs) contrib.set(`${a.split('/')[0]}/32`, { identity: IDENTITY.host, tunnel_endpoint: '0.0.0.0', flags: NONE });
    }
    ctx.ipcache.set('policy', contrib);

    // 5. Conntrack garbage.
    const gc = this.liveCt(ctx, true);
    if (gc.deleted) changed.push(`conntrack: ${gc.deleted} dead entries removed`);
    return { changed, problems };
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
