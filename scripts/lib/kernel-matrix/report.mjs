#!/usr/bin/env node
// The kernel matrix's report: reads each VM's result.env (key=value lines) and prints the
// table (or -o json). Exit 0 only when every kernel passed every column.
//   report.mjs table|json RESULT.env…
import { readFileSync } from 'node:fs';

const [format, ...files] = process.argv.slice(2);

function parse(text) {
  const r = { multi: {} };
  for (const line of text.split('\n')) {
    const i = line.indexOf('=');
    if (i <= 0) continue;
    const k = line.slice(0, i), v = line.slice(i + 1);
    if (k === 'fallback' || k === 'bpf_failed') (r.multi[k] ??= []).push(v);
    else r[k] = v;
  }
  return r;
}

const passFail = (v) => (v === undefined ? 'not run' : v);
const rows = files.map((f) => {
  const r = parse(readFileSync(f, 'utf8'));
  const programs = Object.keys(r).filter((k) => k.startsWith('program_')).sort()
    .map((k) => ({ name: k.slice('program_'.length), result: r[k] }));
  const loaded = Number(r.programs_loaded ?? 0), total = Number(r.programs_total ?? 0);
  const pass = Number(r.bpf_pass ?? 0), fail = Number(r.bpf_fail ?? 0);
  const bpfOk = r.bpf_rc === '0' && fail === 0 && pass > 0;
  const attach = r.attach ?? 'unknown';
  const policy = ['vxlan', 'direct'].map((m) => r[`policy_${m}`]);
  const policyResult = policy.every((p) => p === 'PASS') ? 'PASS'
    : policy.map((p, i) => `${['vxlan', 'direct'][i]}: ${passFail(p)}`).join('; ');
  const row = {
    series: r.series,
    kernel: r.kernel ?? r.kernel_release,
    attach,
    features: r.kernel === undefined ? null : {
      tcx: r.tcx === '1', redirectPeer: r.redirect_peer === '1', redirectNeigh: r.redirect_neigh === '1', ringBuffer: r.ring_buffer === '1',
    },
    fallbacks: r.multi.fallback ?? [],
    programs: { loaded, total, each: programs, ok: total > 0 && loaded === total },
    bpfTests: { files: Number(r.bpf_files ?? 0), pass, fail, skip: Number(r.bpf_skip ?? 0), failed: r.multi.bpf_failed ?? [], ok: bpfOk },
    vxlan: passFail(r.traffic_vxlan),
    direct: passFail(r.traffic_direct),
    policy: policyResult,
    policyByMode: { vxlan: passFail(r.policy_vxlan), direct: passFail(r.policy_direct) },
    timings: {
      wallSeconds: Number(r.wall_s), bootSeconds: Number(r.vm_up_s), probeSeconds: Number(r.probe_s),
      bpfTestSeconds: Number(r.bpf_s), labSeconds: Number(r.lab_s),
    },
    finished: r.done === '1',
    error: r.error ?? (r.timeout ? `timed out after ${r.timeout} s` : null),
  };
  row.ok = row.finished && row.programs.ok && row.bpfTests.ok && row.vxlan === 'PASS' && row.direct === 'PASS' && row.policy === 'PASS';
  return row;
});

if (format === 'json') {
  process.stdout.write(`${JSON.stringify({ ok: rows.every((r) => r.ok), kernels: rows }, null, 2)}\n`);
} else {
  const head = ['KERNEL', 'ATTACH', 'PROGRAMS', 'BPF TESTS', 'VXLAN', 'DIRECT', 'POLICY', 'TIME'];
  const body = rows.map((r) => [
    r.kernel ?? r.series, r.attach, `${r.programs.loaded}/${r.programs.total}`,
    r.bpfTests.ok ? `${r.bpfTests.pass} passed` : `${r.bpfTests.pass} passed, ${r.bpfTests.fail} failed`,
    r.vxlan, r.direct, r.policy, `${r.timings.wallSeconds} s`,
  ]);
  const width = head.map((h, i) => Math.max(h.length, ...body.map((b) => String(b[i]).length)));
  const line = (cols) => cols.map((c, i) => String(c).padEnd(width[i])).join('  ').trimEnd();
  process.stdout.write(`${[line(head), ...body.map(line)].join('\n')}\n`);
  for (const r of rows) {
    if (r.fallbacks.length) process.stdout.write(`${r.kernel}: ${r.fallbacks.join('; ')}\n`);
    if (r.error) process.stdout.write(`${r.kernel ?? r.series}: ${r.error}\n`);
    for (const p of r.programs.each) if (!p.result.startsWith('ok')) process.stdout.write(`${r.kernel}: ${p.name}: ${p.result}\n`);
    for (const f of r.bpfTests.failed) process.stdout.write(`${r.kernel}: ${f}\n`);
  }
}
process.exit(rows.length > 0 && rows.every((r) => r.ok) ? 0 : 1);
