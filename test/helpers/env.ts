/**
 * Shared test plumbing: unique names with a prefix we own, temporary pin roots and
 * network namespaces that are removed in teardown (also when the test fails).
 */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Test } from 'tap';

export const REPO = fileURLToPath(new URL('../../', import.meta.url));
export const IS_ROOT = process.getuid?.() === 0;
export const SLUICE_BIN = join(REPO, 'bin', 'sluice.js');

/**
 * Whether an end-to-end file that drives the compiled CLI can run: it needs root, and
 * dist/ built. Otherwise says why on `t` (a plan of 0 without root, a failure without the
 * build) and returns false.
 */
export function canRunCliE2e(t: Test): boolean {
  const distMain = join(REPO, 'dist', 'cli', 'main.js');
  if (!IS_ROOT) {
    t.plan(0, 'needs root: creates network namespaces and loads eBPF programs');
    return false;
  }
  if (!existsSync(distMain)) {
    t.fail(`${distMain} is missing: build the CLI first with \`npx tsc -p tsconfig.json\``);
    return false;
  }
  return true;
}

/** What a tap test object offers that we need (kept minimal so helpers need no tap types). */
export interface Teardown {
  teardown(fn: () => void | Promise<void>): void;
}

/** A short unique prefix like "slt3fa9" for every name a test creates. */
export function uniquePrefix(tag = ''): string {
  return `slt${tag}${randomBytes(2).toString('hex')}`;
}

export interface RunResult {
  status: number;
  stdout: string;
  stderr: string;
}

export function sh(cmd: string, args: readonly string[], input?: string): RunResult {
  const r: SpawnSyncReturns<string> = spawnSync(cmd, args, { encoding: 'utf8', input, maxBuffer: 64 << 20 });
  if (r.error) throw r.error;
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** Runs `cmd` inside the network namespace NAME (via nsenter, which keeps /sys/fs/bpf visible). */
export function inNetns(ns: string, cmd: string, args: readonly string[], input?: string): RunResult {
  return sh('nsenter', [`--net=/run/netns/${ns}`, cmd, ...args], input);
}

export function mustSh(cmd: string, args: readonly string[], input?: string): string {
  const r = sh(cmd, args, input);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}${r.stdout}`);
  return r.stdout;
}

/** Creates network namespace `name` (lo up) and deletes it at teardown. */
export function netns(t: Teardown, name: string): string {
  mustSh('ip', ['netns', 'add', name]);
  t.teardown(() => {
    sh('ip', ['netns', 'del', name]);
  });
  mustSh('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
  return name;
}

/** A temporary directory removed at teardown. */
export function tempDir(t: Teardown, prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), `${prefix}-`));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

/** A pin root /sys/fs/bpf/<prefix>, removed (recursively) at teardown. */
export function pinRoot(t: Teardown, prefix: string): string {
  const root = `/sys/fs/bpf/${prefix}`;
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  return root;
}

export interface TestNode {
  name: string;
  /** Network namespace name of the node. */
  ns: string;
  config: string;
  pinRoot: string;
  stateDir: string;
  runDir: string;
  /** Runs the sluice CLI inside the node's namespace with the node's config. */
  sluice(args: readonly string[]): RunResult;
  /** Like sluice() but throws on a non-zero exit; returns stdout. */
  must(args: readonly string[]): string;
  /** `sluice ... -o json`, parsed. */
  json<T>(args: readonly string[]): T;
}

/**
 * A sluice node in its own network namespace with its own config, pin root and state;
 * `node reset` runs and everything is removed at teardown.
 */
export function testNode(t: Teardown, prefix: string, extraConfig: Record<string, string | number> = {}): TestNode {
  const ns = netns(t, `${prefix}-node`);
  const dir = tempDir(t, prefix);
  const root = pinRoot(t, prefix);
  const cfg = {
    nodeName: `${prefix}-node`, pinRoot: root, stateDir: join(dir, 'state'), runDir: join(dir, 'run'), ...extraConfig,
  };
  const config = join(dir, 'config.yaml');
  writeFileSync(config, Object.entries(cfg).map(([k, v]) => `${k}: ${v}`).join('\n') + '\n');
  const sluice = (args: readonly string[]) => inNetns(ns, process.execPath, [SLUICE_BIN, '--config', config, ...args]);
  const must = (args: readonly string[]) => {
    const r = sluice(args);
    if (r.status !== 0) throw new Error(`sluice ${args.join(' ')} failed (${r.status}): ${r.stderr}${r.stdout}`);
    return r.stdout;
  };
  t.teardown(() => {
    if (existsSync(`/run/netns/${ns}`)) sluice(['node', 'reset']);
  });
  return {
    name: cfg.nodeName, ns, config, pinRoot: root, stateDir: cfg.stateDir, runDir: cfg.runDir,
    sluice, must, json: <T>(args: readonly string[]) => JSON.parse(must([...args, '-o', 'json'])) as T,
  };
}

/**
 * Steps that run only once a setup subtest completed. Setup belongs in a subtest because
 * tap skips a file's teardowns when the file throws outside one (leaking namespaces).
 */
export function setupGate(t: Test): { done(): void; step(name: string, fn: (t: Test) => Promise<void>): void } {
  let ready = false;
  return {
    done: () => {
      ready = true;
    },
    step: (name, fn) => {
      t.test(name, async (tt) => {
        if (!ready) {
          tt.fail('setup did not complete');
          return;
        }
        await fn(tt);
      });
    },
  };
}
