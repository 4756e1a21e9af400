/** Running the system's network tools, with errors that quote what they said. */
import { spawnSync } from 'node:child_process';

export class CommandError extends Error {
  constructor(readonly command: string, readonly status: number | null, readonly stderr: string) {
    super(`${command} failed${status === null ? '' : ` (exit ${status})`}: ${stderr.trim() || 'no output'}`);
    this.name = 'CommandError';
  }
}

export interface RunOptions {
  input?: string;
  /** Don't throw on a non-zero exit. */
  allowFail?: boolean;
}

export interface RunResult {
  status: number;
  stdout: string;
  stderr: string;
}

export function run(cmd: string, args: readonly string[], o: RunOptions = {}): RunResult {
  const r = spawnSync(cmd, args, { input: o.input, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.error) {
    const code = (r.error as NodeJS.ErrnoException).code;
    throw new CommandError(`${cmd} ${args.join(' ')}`, null, code === 'ENOENT' ? `${cmd} is not installed` : r.error.message);
  }
  const res = { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
  if (res.status !== 0 && !o.allowFail) throw new CommandError(`${cmd} ${args.join(' ')}`, r.status, r.stderr);
  return res;
}
