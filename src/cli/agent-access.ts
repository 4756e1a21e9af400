/**
 * How a CLI command reaches the node: through its agent when one answers on the node's
 * socket (the agent is then the only writer), else directly, holding the node lock.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { agentPaths } from '../agent/agent.js';
import { socketAlive } from '../agent/server.js';
import { AgentClient, AgentHttpError } from '../api/client.js';
import type { Config } from '../config/config.js';
import { EndpointError, notInitialised } from '../endpoint/manager.js';
import { withNode, type NodeHandle } from '../node/context.js';

/** The node's agent, if one answers. */
export async function runningAgent(cfg: Config): Promise<AgentClient | undefined> {
  const { socket } = agentPaths(cfg);
  return (await socketAlive(socket)) ? new AgentClient(socket, { timeoutMs: 120_000 }) : undefined;
}

/** The node's agent, or an error naming the node and its socket (`why`: what needed it). */
export async function requireAgent(cfg: Config, why?: string): Promise<AgentClient> {
  const a = await runningAgent(cfg);
  if (!a) throw new Error(`no sluice agent answers for node ${cfg.nodeName}${why ? `: ${why}` : ` (socket ${agentPaths(cfg).socket})`}`);
  return a;
}

/** Calls the agent, turning its error answers into plain errors carrying its message. */
export async function callAgent<T>(agent: AgentClient, method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
  try {
    return (await agent.request(method, path, body)) as T;
  } catch (e) {
    if (e instanceof AgentHttpError) throw new Error(e.details ? `${e.message} (${e.details})` : e.message);
    throw e;
  }
}

/**
 * Runs `viaAgent` when the agent answers, else `direct` on the opened node. A node never
 * initialised gets `uninitialised()` (default: an error saying so), and nothing is created.
 */
export async function onNode<T>(
  cfg: Config, viaAgent: (a: AgentClient) => Promise<T>, direct: (n: NodeHandle) => Promise<T>, uninitialised?: () => T,
): Promise<T> {
  const agent = await runningAgent(cfg);
  if (agent) return viaAgent(agent);
  if (!existsSync(join(cfg.stateDir, 'node.json'))) {
    if (uninitialised) return uninitialised();
    throw new EndpointError(notInitialised(cfg), 'not_ready');
  }
  return withNode(cfg, direct);
}
