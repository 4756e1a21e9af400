/** The agent's features, in the order they start, reconcile and admit an endpoint. */
import type { AgentFeature } from './feature.js';
import { IdentityFeature } from './identities.js';
import { MonitorFeature } from './monitor.js';
import { PolicyFeature } from './policy.js';
import { PolicyPipeline } from './policy-pipeline.js';
import { PrefilterFeature } from './prefilter.js';
import { PublishFeature } from './publish.js';
import { RoutingFeature } from './routing.js';

export function agentFeatures(): AgentFeature[] {
  // Identities, then publishing, then policy: the three steps of one pipeline (an admission
  // too: identity, then the endpoint's sl_policy entries). Policy before routing: it
  // contributes ipcache entries (pods, CIDR identities) that routing writes.
  const pipeline = new PolicyPipeline();
  return [
    new IdentityFeature(pipeline), new PublishFeature(pipeline), new PolicyFeature(pipeline),
    new RoutingFeature(), new PrefilterFeature(), new MonitorFeature(),
  ];
}
