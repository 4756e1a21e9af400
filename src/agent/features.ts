/** The agent's features, in the order they start and reconcile. */
import type { AgentFeature } from './feature.js';
import { PrefilterFeature } from './prefilter.js';
import { RoutingFeature } from './routing.js';

export function agentFeatures(): AgentFeature[] {
  return [new RoutingFeature(), new PrefilterFeature()];
}
