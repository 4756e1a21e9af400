/**
 * The kernel matrix in CI: scripts/kernel-matrix boots Debian's 6.1 (bookworm) and 5.10
 * (bullseye) kernels under QEMU (TCG) with this machine's root shared read-only, and in
 * each VM loads every sluice program, runs the BPF unit tests (as JavaScript compiled on
 * the host) and a two-node lab: vxlan traffic, a policy, a live switch to direct mode,
 * traffic and the policy again. Asserts each column per kernel, and which attach path ran:
 * both kernels predate tcx (6.6), so classic tc must have been used.
 *
 * Takes 16-20 minutes (one VM at a time, each limited by --timeout). Needs root,
 * qemu-system-x86 and kmod (scripts/setup installs them), and Debian's archive for the
 * first fetch (kernels are cached in /var/cache/sluice-kernels).
 *
 * scripts/test runs it last and alone (its VMs get the machine to themselves), unless
 * SLUICE_KERNEL_MATRIX=0; a direct tap run leaves it out unless SLUICE_KERNEL_MATRIX=1.
 * It found two 5.x bugs of the datapath that the host's kernel hides (docs/kernels.md):
 * the tunnel key size, and the packet class (pkt_type) redirect_peer keeps on 5.10.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { IS_ROOT, REPO } from '../helpers/env.js';

interface KernelRow {
  series: string;
  kernel: string;
  attach: string;
  features: { tcx: boolean; redirectPeer: boolean; redirectNeigh: boolean; ringBuffer: boolean } | null;
  fallbacks: string[];
  programs: { loaded: number; total: number; each: { name: string; result: string }[]; ok: boolean };
  bpfTests: { files: number; pass: number; fail: number; skip: number; failed: string[]; ok: boolean };
  vxlan: string;
  direct: string;
  policy: string;
  policyByMode: { vxlan: string; direct: string };
  timings: Record<string, number>;
  finished: boolean;
  error: string | null;
  ok: boolean;
}

const SERIES = ['6.1', '5.10'];
const PER_VM_SECONDS = 900;

function onPath(cmd: string): boolean {
  return (process.env.PATH ?? '').split(':').some((d) => d && existsSync(join(d, cmd)));
}

/** Runs the matrix; stderr (progress) is passed through to the test's output as comments. */
function runMatrix(signal: AbortSignal): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(join(REPO, 'scripts', 'kernel-matrix'), ['-k', SERIES.join(','), '-o', 'json', '--timeout', String(PER_VM_SECONDS)],
      { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    child.stdout.on('data', (c: Buffer) => { stdout += c; });
    child.stderr.on('data', (c: Buffer) => {
      stderr += c;
      // eslint-disable-next-line no-control-regex
      for (const line of String(c).split('\n')) if (line.trim()) t.comment(line.replace(/\x1b\[[0-9;]*m/g, ''));
    });
    // On abort (tap's timeout, Ctrl-C) the script is stopped by its PID: its trap kills QEMU
    // (by PID) and removes its work directory.
    const stop = () => child.kill('SIGTERM');
    signal.addEventListener('abort', stop, { once: true });
    child.on('close', (status) => {
      signal.removeEventListener('abort', stop);
      resolve({ status, stdout, stderr });
    });
  });
}

if (process.env.SLUICE_KERNEL_MATRIX !== '1') {
  t.plan(0, 'SLUICE_KERNEL_MATRIX=1 runs the kernel matrix (scripts/test does, last and alone; 12-20 min; docs/kernels.md)');
} else if (!IS_ROOT) {
  t.plan(0, 'needs root: the VMs share the host root over 9p and load eBPF programs');
} else if (!onPath('qemu-system-x86_64') || !onPath('depmod')) {
  t.fail('qemu-system-x86_64 or depmod is missing: run scripts/setup (installs qemu-system-x86 and kmod)');
} else {
  // Both VMs one after the other, each bounded by --timeout, plus fetching and building.
  t.setTimeout((SERIES.length * (PER_VM_SECONDS + 90) + 120) * 1000);

  t.test('Debian 6.1 and 5.10 kernels: programs load, BPF tests pass, lab forwards in vxlan and direct mode, policy holds', async (t) => {
    const abort = new AbortController();
    t.teardown(() => abort.abort());
    const r = await runMatrix(abort.signal);
    let report: { ok: boolean; kernels: KernelRow[] };
    try {
      report = JSON.parse(r.stdout) as typeof report;
    } catch {
      t.fail('the matrix printed no JSON report', { status: r.status, stderr: r.stderr.slice(-4000), stdout: r.stdout.slice(-2000) });
      return;
    }
    t.same(report.kernels.map((k) => k.series), SERIES, 'one row per kernel, in order');
    for (const k of report.kernels) {
      t.test(`Linux ${k.kernel} (${k.series})`, async (t) => {
        t.ok(k.kernel.startsWith(`${k.series}.`), `booted Debian's ${k.series} kernel: ${k.kernel}`);
        t.ok(k.finished, 'the VM ran every step and powered off', { error: k.error });
        t.ok(k.features, 'kernel features probed');
        t.equal(k.features?.tcx, false, 'no tcx before 6.6');
        t.equal(k.features?.redirectPeer, true, 'bpf_redirect_peer (5.10+)');
        t.equal(k.features?.redirectNeigh, true, 'bpf_redirect_neigh (5.10+)');
        t.equal(k.features?.ringBuffer, true, 'ring buffer (5.8+)');
        t.match(k.fallbacks.join('\n'), /no tcx .*classic tc/, 'the tcx fallback is reported');
        t.ok(k.programs.total >= 5, `every program tried (${k.programs.total})`);
        t.equal(k.programs.loaded, k.programs.total, 'every program passed the verifier', { programs: k.programs.each });
        t.ok(k.bpfTests.pass > 100, `BPF tests ran: ${k.bpfTests.pass} passed in ${k.bpfTests.files} files`);
        t.equal(k.bpfTests.fail, 0, 'no BPF test failed', { failed: k.bpfTests.failed });
        t.ok(k.bpfTests.ok, 'every BPF test file exited 0', { failed: k.bpfTests.failed });
        t.equal(k.attach, 'tc', 'the datapath attached with classic tc (clsact + cls_bpf), the fallback from tcx');
        t.equal(k.vxlan, 'PASS', 'pod-to-pod across nodes in vxlan mode (ping and TCP)');
        t.equal(k.direct, 'PASS', 'pod-to-pod across nodes in direct mode after a live switch');
        t.equal(k.policyByMode.direct, 'PASS', 'the policy allows n1-p1 and denies n1-p2 in direct mode');
        t.equal(k.policyByMode.vxlan, 'PASS', 'the policy allows n1-p1 and denies n1-p2 in vxlan mode');
        t.comment(`${k.kernel}: attach ${k.attach}, programs ${k.programs.loaded}/${k.programs.total}, BPF tests ${k.bpfTests.pass} passed ${k.bpfTests.fail} failed, `
          + `vxlan ${k.vxlan}, direct ${k.direct}, policy ${k.policy}; seconds ${JSON.stringify(k.timings)}`);
      });
    }
    t.equal(r.status, report.ok ? 0 : 1, 'exit status says whether everything passed');
    t.ok(report.kernels.every((k) => k.finished), 'every VM finished within its limit');
  });
}
