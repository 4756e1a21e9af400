/**
 * Network namespaces. A namespace is named by a path (/run/netns/NAME, /proc/PID/ns/net)
 * or by a name under /run/netns. `withNetns` runs synchronous code in another namespace
 * by setns(2) on the calling thread and switches back; JavaScript runs on one thread,
 * so that is the whole process as far as our synchronous calls and spawned children
 * are concerned. (Avoid `ip netns exec` for sluice itself: it remounts /sys, which
 * hides /sys/fs/bpf.)
 */
import { closeSync, existsSync, openSync, statSync, statfsSync } from 'node:fs';
import { libc as libcBinding } from '../sys/libc.js';
import { run } from './exec.js';

const CLONE_NEWNET = 0x40000000;
const NSFS_MAGIC = 0x6e736673;

export class NetnsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NetnsError';
  }
}

/** Resolves a namespace name or path to a path, and checks that it is a network namespace. */
export function netnsPath(nameOrPath: string): string {
  if (!nameOrPath) throw new NetnsError('no network namespace given');
  const path = nameOrPath.includes('/') ? nameOrPath : `/run/netns/${nameOrPath}`;
  if (!existsSync(path)) throw new NetnsError(`network namespace '${nameOrPath}' does not exist (${path})`);
  let magic: number;
  try {
    magic = statfsSync(path).type;
  } catch (e) {
    throw new NetnsError(`cannot inspect network namespace '${nameOrPath}': ${(e as Error).message}`);
  }
  if (magic !== NSFS_MAGIC) throw new NetnsError(`'${nameOrPath}' (${path}) is not a network namespace`);
  return path;
}

/** The inode of a namespace file: equal inodes are the same namespace. */
export function netnsId(path: string): number {
  return statSync(path).ino;
}

export function currentNetnsId(): number {
  return statSync('/proc/self/ns/net').ino;
}

/** Runs `fn` inside the network namespace at `path` and returns to the current one. */
export function withNetns<T>(path: string, fn: () => T): T {
  const libc = libcBinding();
  const here = openSync('/proc/self/ns/net', 'r');
  let target: number | undefined;
  try {
    target = openSync(path, 'r');
    if ((libc.setns(target, CLONE_NEWNET) as number) !== 0) {
      throw new NetnsError(`cannot enter network namespace ${path}: is it a network namespace?`);
    }
    try {
      return fn();
    } finally {
      if ((libc.setns(here, CLONE_NEWNET) as number) !== 0) {
        // Continuing in the wrong namespace would corrupt everything after this point.
        process.stderr.write(`sluice: fatal: cannot return to the original network namespace\n`);
        process.exit(70);
      }
    }
  } finally {
    if (target !== undefined) closeSync(target);
    closeSync(here);
  }
}

export function createNetns(name: string): string {
  run('ip', ['netns', 'add', name]);
  return `/run/netns/${name}`;
}

export function deleteNetns(name: string): void {
  run('ip', ['netns', 'del', name], { allowFail: true });
}

export function listNetns(): string[] {
  const r = run('ip', ['-j', 'netns', 'list'], { allowFail: true });
  if (r.status !== 0 || !r.stdout.trim()) return [];
  return (JSON.parse(r.stdout) as { name: string }[]).map((n) => n.name);
}
