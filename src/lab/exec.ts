/**
 * `lab exec`: runs a command inside a pod's (or a node's, or an outside host's) network namespace with
 * `nsenter --net=`, stdio passed through; resolves to the command's exit status
 * (128 + the signal number when a signal ended it). In a node, `sluice` is the lab's own
 * build and acts on that node: SLUICE_CONFIG names the node's config.
 */
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { CONFIG_ENV } from '../config/config.js';
import { labRoot } from './state.js';
import { findPod, loadLab } from './status.js';
import { labTools } from './tools.js';

export type ExecTarget = { pod: string } | { node: string } | { external: string };

export interface ExecPlace {
  /** The network namespace's path. */
  netns: string;
  /** A node's config file (undefined for a pod). */
  config?: string;
}

/** Where a pod (NS/NAME or a unique NAME), a node or an outside host of the lab lives. */
export function targetOf(lab: string, target: ExecTarget, root = labRoot()): ExecPlace {
  const s = loadLab(lab, root);
  if ('node' in target) {
    const n = s.plan.nodes.find((x) => x.name === target.node);
    if (!n) throw new Error(`no node ${target.node} in lab ${lab} (nodes: ${s.plan.nodes.map((x) => x.name).join(', ')})`);
    return { netns: n.netnsPath, config: n.config };
  }
  if ('external' in target) {
    const x = s.plan.external.find((e) => e.name === target.external);
    if (!x) throw new Error(`no outside host ${target.external} in lab ${lab} (outside hosts: ${s.plan.external.map((e) => e.name).join(', ') || 'none'})`);
    return { netns: x.netnsPath };
  }
  const pods = s.plan.pods.map((p) => ({ name: p.ref, pod: p.name, netns: p.netnsPath }));
  return { netns: findPod(pods, target.pod).netns };
}

/**
 * The argv and environment of a command run in `place`: in a node, a leading `sluice` is
 * this build of it (what the lab's agents run), with the node's config in force.
 */
export function execCommand(place: ExecPlace, argv: readonly string[], env: NodeJS.ProcessEnv = process.env): { argv: string[]; env: NodeJS.ProcessEnv } {
  if (argv.length === 0) throw new Error('no command given (sluice lab exec POD -- CMD [ARGS…])');
  if (!place.config) return { argv: ['nsenter', `--net=${place.netns}`, ...argv], env };
  const tools = labTools();
  const cmd = argv[0] === 'sluice' ? [tools.node, tools.sluice, ...argv.slice(1)] : [...argv];
  return { argv: ['nsenter', `--net=${place.netns}`, ...cmd], env: { ...env, [CONFIG_ENV]: place.config } };
}

/** Runs a command in `place` with its output captured (for `lab up`'s own steps). */
export function runIn(place: ExecPlace, argv: readonly string[], signal?: AbortSignal): Promise<{ code: number; stdout: string; stderr: string }> {
  const c = execCommand(place, argv);
  return new Promise((resolve, reject) => {
    const child = spawn(c.argv[0]!, c.argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: c.env, ...(signal ? { signal } : {}) });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.once('error', (e) => reject(new Error(`cannot run ${argv.join(' ')} in ${place.netns}: ${e.message}`)));
    child.once('close', (code, sig) => resolve({ code: sig ? 128 + (constants.signals[sig] ?? 0) : (code ?? 1), stdout, stderr }));
  });
}

export function execIn(place: ExecPlace, argv: readonly string[]): Promise<number> {
  const c = execCommand(place, argv);
  return new Promise((resolve, reject) => {
    const child = spawn(c.argv[0]!, c.argv.slice(1), { stdio: 'inherit', env: c.env });
    // The terminal's ^C reaches the command (same process group); its exit status says what happened.
    const ignore = () => {};
    process.on('SIGINT', ignore);
    const done = () => process.off('SIGINT', ignore);
    child.once('error', (e) => {
      done();
      reject(new Error(`cannot run nsenter: ${e.message}`));
    });
    child.once('exit', (code, signal) => {
      done();
      resolve(signal ? 128 + (constants.signals[signal] ?? 0) : (code ?? 1));
    });
  });
}
