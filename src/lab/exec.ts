/**
 * `lab exec`: runs a command inside a pod's (or a node's) network namespace with
 * `nsenter --net=`, stdio passed through; resolves to the command's exit status
 * (128 + the signal number when a signal ended it).
 */
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { labRoot } from './state.js';
import { findPod, loadLab } from './status.js';

export type ExecTarget = { pod: string } | { node: string };

/** The network namespace path of a pod (NS/NAME or a unique NAME) or a node of the lab. */
export function targetNetns(lab: string, target: ExecTarget, root = labRoot()): string {
  const s = loadLab(lab, root);
  if ('node' in target) {
    const n = s.plan.nodes.find((x) => x.name === target.node);
    if (!n) throw new Error(`no node ${target.node} in lab ${lab} (nodes: ${s.plan.nodes.map((x) => x.name).join(', ')})`);
    return n.netnsPath;
  }
  const pods = s.plan.pods.map((p) => ({ name: p.ref, pod: p.name, netns: p.netnsPath }));
  return findPod(pods, target.pod).netns;
}

export function execIn(netns: string, argv: readonly string[]): Promise<number> {
  if (argv.length === 0) throw new Error('no command given (sluice lab exec POD -- CMD [ARGS…])');
  return new Promise((resolve, reject) => {
    const child = spawn('nsenter', [`--net=${netns}`, ...argv], { stdio: 'inherit' });
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
