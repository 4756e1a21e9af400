/** A reader that goes away (`sluice bpf layouts | head`) ends the CLI quietly, as SIGPIPE ends ls. */
import t from 'tap';
import { spawn } from 'node:child_process';
import { SLUICE_BIN } from '../helpers/env.js';

t.test('stdout closed before the CLI writes: exit 141, no stack trace', async (tt) => {
  const child = spawn(process.execPath, [SLUICE_BIN, 'bpf', 'layouts', '-o', 'json'], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.destroy(); // the read end is closed before anything is written
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
  tt.equal(code, 141, 'the exit status of a process ended by a closed pipe');
  tt.equal(stderr, '', 'nothing on stderr (no EPIPE stack)');
});
