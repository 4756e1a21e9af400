/**
 * A node's config may name the network namespace the node lives in (`nodeNetns`). A command
 * run with that config anywhere else would reach the node's store, agents and pods
 * through the wrong namespace's routes: from the root namespace, out of the machine's own
 * uplink to whatever answers there. So it refuses, and says how to run it where it belongs.
 */
import { statSync } from 'node:fs';
import type { Config } from './config.js';

export class WrongNetnsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WrongNetnsError';
  }
}

/** dev:inode of a namespace file; two paths of one namespace give the same. */
function nsKey(path: string): string {
  const s = statSync(path);
  return `${s.dev}:${s.ino}`;
}

/** Throws unless this process runs in the network namespace `cfg.nodeNetns` names (when it names one). */
export function requireNodeNetns(cfg: Pick<Config, 'nodeNetns' | 'nodeName'>, configFile?: string, self = '/proc/self/ns/net'): void {
  if (!cfg.nodeNetns) return;
  let want: string;
  try {
    want = nsKey(cfg.nodeNetns);
  } catch (e) {
    throw new WrongNetnsError(`node ${cfg.nodeName} lives in network namespace ${cfg.nodeNetns} (config key nodeNetns), which does not exist (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); is its lab down?`);
  }
  if (nsKey(self) === want) return;
  const conf = configFile ? ` --config ${configFile}` : '';
  throw new WrongNetnsError(`node ${cfg.nodeName} lives in network namespace ${cfg.nodeNetns} (config key nodeNetns) and this command runs in another one, `
    + 'from which its store, agent and pods are reached through other routes, or not at all. Run it inside the node\'s namespace: '
    + `\`nsenter --net=${cfg.nodeNetns} sluice${conf} …\`, or for a lab's node \`sluice lab exec [--name LAB] --node ${cfg.nodeName} -- sluice …\``);
}
