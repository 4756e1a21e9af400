/**
 * NetworkPolicy as an agent feature: the policies compiled into sl_policy for this node's
 * endpoints, and conntrack garbage collection.
 *
 * A new endpoint is admitted before the datapath knows it (EndpointAdmission): with the
 * identity identities.ts allocated for it, it gets its own sl_policy entries, compiled from
 * the inputs of the last pass, so its first packet in either direction meets the policy in
 * force. Peers' entries for a new identity follow with the pass the add schedules.
 *
 * Every reconciliation (and whenever policies, namespace labels, identities or published
 * endpoints change in the store), after identities.ts and publish.ts (policy-pipeline.ts):
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
import { parseEndpointName, type Endpoint } from '../endpoint/types.js';
import { IdentityAllocator, identityLabels } from '../identity/identity.js';
import { liveCt } from '../maps/ct.js';
import { POLICY_MAP, syncPolicy, writePolicy, type PolicyEntry } from '../maps/policy.js';
import { readPolicyStats } from '../maps/policy-stats.js';
import { syncPolicyCidrs } from '../maps/policy-cidr.js';
import { allAddresses } from '../net/ip.js';
import { compilePolicies } from '../policy/compile.js';
import { ENDPOINTS, IDENTITY_IDS, NAMESPACES, POLICIES, identityOfKey } from '../store/keys.js';
import type { Unwatch } from '../store/types.js';
import { Serial } from '../util/serial.js';
import type { AgentContext, AgentFeature, FeatureReport, MapSyncReport, ReconcilePass } from './feature.js';
import { MapSync } from './map-sync.js';
import { compileInputOf, endpointRecordProblems, policyInputsFingerprint, policyIpcache, type LocalEndpointInput, type PolicyInputs } from './policy-inputs.js';
import type { PolicyPipeline } from './policy-pipeline.js';
import { storedValues } from './stored-values.js';

/** The cluster-wide inputs of a compile: everything but this node's endpoints. */
type ClusterInputs = Omit<PolicyInputs, 'local'>;

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
  /** The CIDR identities of the last compile, for sl_policy_cidr (undefined before the first). */
  private cidrWant: ReadonlyMap<string, number> | undefined;
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

  constructor(private readonly pipeline: PolicyPipeline) {}

  async start(ctx: AgentContext): Promise<void> {
    for (const prefix of [POLICIES, NAMESPACES, ENDPOINTS, IDENTITY_IDS]) {
      this.unwatch.push(await ctx.node.store.watch(prefix, (e) => {
        // Our own endpoint records change when we publish them: not a reason to run again.
        if (prefix === ENDPOINTS && e.key.startsWith(`${ENDPOINTS}${ctx.cfg.nodeName}/`)) return;
        // An identity marked as used again changes nothing; a new or removed one does.
        if (prefix === IDENTITY_IDS && e.type === 'put' && this.knownIdentities.has(identityOfKey(e.key))) return;
        ctx.scheduleReconcile(`${prefix.replace(/\/.*/, '')} changed`);
      }));
    }
    ctx.registry.collect('sluice_policy_verdicts_total', 'Packets decided by policy, by policy, direction and verdict', 'counter', () => this.verdictSamples(ctx));
    ctx.registry.collect('sluice_ct_entries', 'Live entries in the conntrack table', 'gauge', () => [{ name: 'sluice_ct_entries', value: liveCt(ctx.cfg).live }]);
  }

  /** `ep` carries the identity the identities feature allocated for it. */
  async admit(ctx: AgentContext, ep: Readonly<Endpoint>): Promise<{ identity?: number }> {
    const identity = ep.identity;
    if (identity === undefined) return {};
    const namespace = parseEndpointName(ep.name).namespace;
    const cluster = this.lastCluster ?? await this.readCluster(ctx, new IdentityAllocator(ctx.node.store));
    await this.writer.run(async () => {
      const me: LocalEndpointInput = { id: ep.id, namespace, identity, labels: ep.labels, ports: ep.ports ?? [] };
      const identities = new Map(cluster.identities);
      if (!identities.has(identity)) identities.set(identity, identityLabels(namespace, ep.labels));
      const compiled = compilePolicies(compileInputOf({ ...cluster, identities, local: new Map([[ep.id, me]]) }));
      // New keys only (the endpoint id is new): nothing another endpoint relies on changes.
      writePolicy(ctx.cfg, compiled.entries);
      this.admitted.set(ep.id, me);
    });
    return {};
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
    return await this.pipeline.step(this.name, () => this.compile(ctx, pass)) ?? { changed: [], problems: [] };
  }

  private async compile(ctx: AgentContext, pass: ReconcilePass): Promise<FeatureReport> {
    const changed: string[] = [];
    const problems: string[] = [];

    // 3. Compile and apply, when the inputs changed; read sl_policy back when drift is suspected or due.
    const cluster = await this.readCluster(ctx, new IdentityAllocator(ctx.node.store), this.pipeline.takeEndpoints());
    this.lastCluster = cluster;
    this.knownIdentities = new Set(cluster.identities.keys());
    problems.push(...endpointRecordProblems(cluster));
    const report = await this.writer.run(() => this.apply(ctx, pass, cluster, changed, problems));

    // 5. Conntrack garbage.
    const gc = liveCt(ctx.cfg, { collect: true });
    if (gc.deleted) changed.push(`conntrack: ${gc.deleted} dead entries removed`);
    return { changed, problems, sync: { [POLICY_MAP.name]: report } };
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
    this.sync ??= new MapSync(POLICY_MAP.name, ctx.driftCheckMs);
    const decision = this.sync.decide(fp, POLICY_MAP.state(cfg), pass.driftCheck);
    const report: MapSyncReport = { ...decision };
    let want = this.sync.wanted();
    if (decision.action === 'apply') {
      const compiled = compilePolicies(compileInputOf(inputs));
      want = compiled.entries;
      this.lastPolicyIds = compiled.policyIds;
      this.cidrWant = compiled.addressIdentities;
      // 4. ipcache contributions: they follow from the same inputs, so the same fingerprint.
      ctx.ipcache.set('policy', { entries: policyIpcache(cfg.nodeName, inputs, compiled.cidrIdentities), fingerprint: fp });
    }
    if (decision.action !== 'skip' && want) {
      try {
        const c = syncPolicy(cfg, want);
        Object.assign(report, c);
        if (c.written || c.removed) {
          const what = `sl_policy: ${c.written} written, ${c.removed} removed (${want.size} entries)`;
          changed.push(decision.action === 'verify' ? `${what}: drift repaired (${decision.reason})` : what);
        }
        // The CIDR identities of peer addresses, from the same compile (so, the same fingerprint).
        if (this.cidrWant) {
          const d = syncPolicyCidrs(cfg, this.cidrWant);
          const written = d.added.length + d.changed.length;
          if (written || d.removed.length) changed.push(`sl_policy_cidr: ${written} written, ${d.removed.length} removed (${this.cidrWant.size} entries)`);
        }
        this.sync.done(fp, POLICY_MAP.state(cfg), want);
      } catch (e) {
        this.sync.failed();
        problems.push(`sl_policy: ${(e as Error).message}`);
      }
    }
    return report;
  }

  private verdictSamples(ctx: AgentContext) {
    const names = new Map([...this.lastPolicyIds].map(([ref, id]) => [id, ref]));
    return readPolicyStats(ctx.cfg).map((s) => ({
      name: 'sluice_policy_verdicts_total',
      labels: { policy: names.get(s.policy) ?? String(s.policy), direction: s.dir === 1 ? 'ingress' : 'egress', verdict: s.allowed ? 'allowed' : 'denied' },
      value: s.packets,
    }));
  }
}
