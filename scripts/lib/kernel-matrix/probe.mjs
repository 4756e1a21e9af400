#!/usr/bin/env node
// Kernel-matrix probe (runs inside the VM, also on a host): the kernel's features as
// `sluice status` reports them, then every datapath program built and loaded on its own
// into a scratch pin root, so one rejected program does not hide the others. Prints
// key=value lines (the matrix's result format); a verifier log's tail goes to stderr.
// Exit 0 when every program loaded.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = new URL('../../../', import.meta.url).pathname;
const { kernelFeatures } = await import(join(root, 'dist/datapath/status.js'));
const { loadDatapath } = await import(join(root, 'dist/datapath/loader.js'));
const { datapathSources } = await import(join(root, 'dist/datapath/build.js'));
const { resolveConfig } = await import(join(root, 'dist/config/config.js'));

const f = kernelFeatures();
const out = [`kernel=${f.kernel}`, `tcx=${+f.tcx}`, `redirect_peer=${+f.redirectPeer}`,
  `redirect_neigh=${+f.redirectNeigh}`, `ring_buffer=${+f.ringBuffer}`];
for (const fb of f.fallbacks) out.push(`fallback=${fb}`);

const scratch = mkdtempSync(join(tmpdir(), 'km-probe-'));
const pins = mkdtempSync('/sys/fs/bpf/km-probe-');
let loaded = 0;
const sources = datapathSources();
try {
  const cfg = resolveConfig({}, { nodeName: 'probe', pinRoot: pins, stateDir: scratch, runDir: scratch });
  for (const source of sources) {
    try {
      const progs = loadDatapath(cfg, { sources: [source] });
      loaded++;
      out.push(`program_${source}=ok ${progs.map((p) => `id ${p.id}`).join(' ')}`);
    } catch (e) {
      const msg = String(e.message ?? e);
      process.stderr.write(`program ${source}: ${msg}\n`);
      out.push(`program_${source}=FAIL ${msg.split('\n')[0]}`);
    }
  }
} finally {
  rmSync(pins, { recursive: true, force: true });
  rmSync(scratch, { recursive: true, force: true });
}
out.push(`programs_loaded=${loaded}`, `programs_total=${sources.length}`);
process.stdout.write(`${out.join('\n')}\n`);
process.exit(loaded === sources.length ? 0 : 1);
