/**
 * Publishing this node's endpoints, as an agent feature: every ready local endpoint that has
 * its identity is written to the store (key endpoints/<node>/<id>: address, identity, labels,
 * ports), so other nodes know each pod; records of endpoints gone are deleted. Second of the
 * three steps of policy-pipeline.ts: the records it leaves are handed to the policy step.
 */
import { parseEndpointName } from '../endpoint/types.js';
import type { PublishedEndpoint } from '../policy/store.js';
import { ENDPOINTS } from '../store/keys.js';
import type { AgentContext, AgentFeature, FeatureReport } from './feature.js';
import type { PolicyPipeline } from './policy-pipeline.js';
import { storedValues } from './stored-values.js';

export class PublishFeature implements AgentFeature {
  readonly name = 'publish';

  constructor(private readonly pipeline: PolicyPipeline) {}

  async reconcile(ctx: AgentContext): Promise<FeatureReport> {
    const endpoints = await this.pipeline.step(this.name, () => this.publish(ctx));
    if (endpoints) this.pipeline.handOver(endpoints);
    return { changed: [], problems: [] };
  }

  /** Writes what differs; returns every node's endpoint records after the writes. */
  private async publish(ctx: AgentContext): Promise<Map<string, string>> {
    const { cfg, node } = ctx;
    const local = node.manager.list().filter((e) => e.state === 'ready' && e.identity !== undefined);
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
    return endpoints;
  }
}
