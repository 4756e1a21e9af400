/**
 * Security identities of this node's endpoints, as an agent feature: each local endpoint
 * gets the cluster-wide identity of (namespace, labels) (src/identity/).
 *
 * A new endpoint is admitted before the datapath knows it (EndpointAdmission): its identity
 * is allocated then, before its sl_policy entries (policy.ts) and its sl_endpoints entry.
 *
 * Every reconciliation, first of the three steps of policy-pipeline.ts: each ready local
 * endpoint whose labels changed gets its identity, written by the endpoint manager into its
 * record and its sl_endpoints entry (the VNI carries it).
 */
import { parseEndpointName, type Endpoint } from '../endpoint/types.js';
import { IdentityAllocator } from '../identity/identity.js';
import { readEndpoints } from '../maps/endpoints.js';
import type { AgentContext, AgentFeature, FeatureReport } from './feature.js';
import type { PolicyPipeline } from './policy-pipeline.js';

export class IdentityFeature implements AgentFeature {
  readonly name = 'identities';

  constructor(private readonly pipeline: PolicyPipeline) {}

  async admit(ctx: AgentContext, ep: Readonly<Endpoint>): Promise<{ identity: number }> {
    const namespace = parseEndpointName(ep.name).namespace;
    return { identity: await new IdentityAllocator(ctx.node.store).allocate(namespace, ep.labels) };
  }

  async reconcile(ctx: AgentContext): Promise<FeatureReport> {
    this.pipeline.begin();
    return await this.pipeline.step(this.name, () => this.assign(ctx)) ?? { changed: [], problems: [] };
  }

  /**
   * Identities are allocated without the node lock (a store outage must not hold up adds
   * and deletes), and written under it if the endpoint did not change meanwhile.
   */
  private async assign(ctx: AgentContext): Promise<FeatureReport> {
    const { cfg, node } = ctx;
    const changed: string[] = [];
    const ids = new IdentityAllocator(node.store);
    const wanted = new Map<number, { identity: number; labels: string }>();
    for (const ep of node.manager.list()) {
      if (ep.state !== 'ready') continue;
      wanted.set(ep.id, { identity: await ids.allocate(parseEndpointName(ep.name).namespace, ep.labels), labels: JSON.stringify(ep.labels) });
    }
    const entries = readEndpoints(cfg);
    for (const ep of node.manager.list()) {
      const w = wanted.get(ep.id);
      if (ep.state !== 'ready' || !w || w.labels !== JSON.stringify(ep.labels)) continue;
      if (ep.identity === w.identity && entries.get(ep.ip)?.identity === w.identity) continue;
      if (await node.manager.setIdentity(ep, w.identity)) changed.push(`${ep.name} identity ${w.identity}`);
    }
    return { changed, problems: [] };
  }
}
