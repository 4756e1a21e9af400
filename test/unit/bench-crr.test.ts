/**
 * The dataplanes suite's two extra figures: new connections per second (slbench-crr and
 * its output parser) and CPU time per GB (the /proc/stat parser). The tool itself is
 * compiled with clang and run over 127.0.0.1 only (no namespace, no sysctl, no device):
 * a server that answers, a port nobody listens on, a server that never answers.
 */
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { busySeconds, busyTicks, cpuSecondsPerGb, parseProcStat } from '../../src/bench/cpustat.js';
import { buildCrr, CRR_BIN_NAME, parseCrrJson, runCrrClient } from '../../src/bench/crr.js';
import { Processes } from '../../src/bench/proc.js';
import { ToolOutputError } from '../../src/bench/tools.js';

// Captured from /proc/stat on Linux 6.18 (2 CPUs), shortened.
const PROC_STAT = `cpu  4705 150 1120 1164396 473 0 321 7 0 0
cpu0 2319 71 564 582119 237 0 177 3 0 0
cpu1 2386 79 556 582277 236 0 144 4 0 0
intr 1462451 9 0 0
ctxt 2651289
btime 1718000000
`;

t.test('parseProcStat: the aggregate cpu line; busy = user+nice+system+irq+softirq+steal', async (t) => {
  const c = parseProcStat(PROC_STAT);
  t.same(c, { user: 4705, nice: 150, system: 1120, idle: 1164396, iowait: 473, irq: 0, softirq: 321, steal: 7 });
  t.equal(busyTicks(c), 4705 + 150 + 1120 + 0 + 321 + 7, 'idle and iowait are not busy; guest is inside user');
  t.same(parseProcStat('cpu 1 2 3 4\n'), { user: 1, nice: 2, system: 3, idle: 4, iowait: 0, irq: 0, softirq: 0, steal: 0 }, 'old kernels: fewer columns');
  t.throws(() => parseProcStat('cpu0 1 2 3 4 5 6 7 8\n'), /no aggregate "cpu" line/, 'per-CPU lines only');
  t.throws(() => parseProcStat(''), /no aggregate/);
  t.throws(() => parseProcStat('cpu 1 2 x 4\n'), /unexpected cpu line/);
  t.throws(() => parseProcStat('cpu 1 2\n'), /unexpected cpu line/);
});

t.test('busySeconds: this machine, a clock that does not go back', async (t) => {
  const a = busySeconds();
  let x = 0;
  for (let i = 0; i < 2e7; i++) x += i; // some CPU
  const b = busySeconds();
  t.ok(a > 0 && b >= a, `${a} then ${b} (${x > 0})`);
});

t.test('cpuSecondsPerGb', async (t) => {
  t.equal(cpuSecondsPerGb(2, 4e9), 0.5);
  t.equal(cpuSecondsPerGb(0, 1e9), 0, 'no CPU counted: 0');
  t.equal(cpuSecondsPerGb(1, 0), null, 'nothing moved: no figure');
  t.equal(cpuSecondsPerGb(null, 1e9), null);
  t.equal(cpuSecondsPerGb(1, null), null);
  t.equal(cpuSecondsPerGb(-1, 1e9), null);
  t.equal(cpuSecondsPerGb(Number.NaN, 1e9), null);
});

t.test('parseCrrJson', async (t) => {
  t.same(parseCrrJson('{"transactions":5000,"seconds":1.25,"errors":0,"first_error":null}\n'),
    { transactions: 5000, seconds: 1.25, errors: 0, firstError: null, connsPerS: 4000 });
  t.same(parseCrrJson('noise\n{"transactions":0,"seconds":1.000556,"errors":824,"first_error":"connect: Connection refused"}\n'),
    { transactions: 0, seconds: 1.000556, errors: 824, firstError: 'connect: Connection refused', connsPerS: null }, 'nothing completed: no rate (not 0)');
  t.equal(parseCrrJson('{"transactions":10,"seconds":2,"errors":3,"first_error":"read: Connection reset by peer"}').connsPerS, 5, 'the rate counts completed ones only');
  t.throws(() => parseCrrJson(''), ToolOutputError);
  t.throws(() => parseCrrJson('usage: slbench-crr ...'), /no JSON/);
  t.throws(() => parseCrrJson('{"transactions": 1'), /not valid JSON/);
  t.throws(() => parseCrrJson('{"transactions":-1,"seconds":1,"errors":0}'), /whole numbers/);
  t.throws(() => parseCrrJson('{"transactions":1.5,"seconds":1,"errors":0}'), /whole numbers/);
  t.throws(() => parseCrrJson('{"transactions":1,"seconds":0,"errors":0}'), /seconds must be positive/);
  t.throws(() => parseCrrJson('{"transactions":1,"seconds":1,"errors":0,"first_error":5}'), /first_error/);
});

const HAVE_CLANG = spawnSync('sh', ['-c', 'command -v clang'], { stdio: 'ignore' }).status === 0;

t.test('slbench-crr over 127.0.0.1', { skip: HAVE_CLANG ? false : 'no clang' }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'slt-crr-'));
  const procs = new Processes();
  t.teardown(() => {
    procs.killAllSync();
    rmSync(dir, { recursive: true, force: true });
  });
  const bin = await buildCrr(procs, dir);
  t.match(bin, new RegExp(`${CRR_BIN_NAME}$`));

  // A free port: the kernel picks one for a moment, then it is released.
  const freePort = async (): Promise<number> => {
    const s = createServer();
    await new Promise<void>((res) => s.listen(0, '127.0.0.1', res));
    const port = (s.address() as AddressInfo).port;
    await new Promise<void>((res) => s.close(() => res()));
    return port;
  };
  const run = (args: string[]) => new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const c = spawn(bin, args);
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d: Buffer) => { stdout += d; });
    c.stderr.on('data', (d: Buffer) => { stderr += d; });
    c.on('close', (code) => resolve({ code, stdout, stderr }));
  });

  await t.test('a server that answers: transactions, no errors', async (t) => {
    const port = await freePort();
    const server = procs.start('crr server', bin, ['server', '-b', '127.0.0.1', '-p', String(port)]);
    const accepts = () => new Promise<boolean>((res) => {
      const c = connect(port, '127.0.0.1', () => { c.destroy(); res(true); });
      c.on('error', () => res(false));
    });
    for (let i = 0; i < 100 && !(await accepts()); i++) await new Promise((res) => setTimeout(res, 50));
    const r = await runCrrClient(procs, bin, undefined, '127.0.0.1', port, 1, undefined, 'loopback');
    t.ok(r.transactions > 0, `${r.transactions} transactions`);
    t.equal(r.errors, 0);
    t.equal(r.firstError, null);
    t.ok(r.connsPerS !== null && r.connsPerS > 0 && r.seconds >= 1);
    const e = await procs.stop(server);
    t.equal(e.code, 0, 'the server ends cleanly on SIGTERM');
    t.match(e.stderr, /transactions served/);
  });

  await t.test('nobody listening: errors counted, no transaction, no rate', async (t) => {
    const port = await freePort();
    const r = await runCrrClient(procs, bin, undefined, '127.0.0.1', port, 1, undefined, 'closed port');
    t.equal(r.transactions, 0);
    t.ok(r.errors > 0, `${r.errors} errors`);
    t.equal(r.firstError, 'connect: Connection refused');
    t.equal(r.connsPerS, null, 'reported as no figure, not as 0 connections per second');
  });

  await t.test('a server that accepts and never answers: timed out reads are errors', async (t) => {
    const held: Socket[] = [];
    const mute: Server = createServer((s) => {
      s.on('error', () => {}); // the client gives up with a reset
      held.push(s);
    });
    await new Promise<void>((res) => mute.listen(0, '127.0.0.1', res));
    const port = (mute.address() as AddressInfo).port;
    const r = await run(['client', '-c', '127.0.0.1', '-p', String(port), '-t', '1', '-w', '200']);
    for (const s of held) s.destroy();
    await new Promise<void>((res) => mute.close(() => res()));
    t.equal(r.code, 0);
    const f = parseCrrJson(r.stdout);
    t.equal(f.transactions, 0);
    t.ok(f.errors >= 3 && f.errors <= 6, `${f.errors} reads of 200 ms in 1 s`);
    t.equal(f.firstError, 'read: Connection timed out');
  });

  await t.test('usage errors: exit 2, no JSON', async (t) => {
    for (const args of [[], ['both'], ['client', '-c', '127.0.0.1', '-p', '1'], ['client', '-c', 'nope', '-p', '1', '-t', '1'], ['server', '-b', '127.0.0.1', '-p', '70000']]) {
      const r = await run(args);
      t.equal(r.code, 2, args.join(' ') || '(none)');
      t.equal(r.stdout, '');
    }
  });

  await t.test('a compile error is reported with clang\'s message', async (t) => {
    const broken = join(dir, 'broken.c');
    writeFileSync(broken, 'int main(void) { return x; }\n');
    await t.rejects(buildCrr(procs, join(dir), broken), /could not compile .*broken\.c with clang -O2 \(exit 1: [^]*undeclared identifier 'x'/);
    await t.rejects(buildCrr(procs, dir, join(dir, 'absent.c')), /absent\.c is missing/);
  });
});
