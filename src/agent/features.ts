/** The agent's features, in the order they start and reconcile. */
import type { AgentFeature } from './feature.js';
import { MonitorFeature } from './monitor.js';
import { PolicyFeature } from './policy.js';
import { PrefilterFeature } from './prefilter.js';
import { RoutingFeature } from './routing.js';

export function agentFeatures(): AgentFeature[] {
  // Policy first: it contributes ipcache entries (pods, CIDR identities) that routing writes.
  return [new PolicyFeature(), new RoutingFeature(), new PrefilterFeature(), new MonitorFeature()];
}
