#!/usr/bin/env node
// The sluice CNI plugin. Install it in the runtime's CNI bin dir under the name the
// network configuration's "type" gives (normally "sluice"):
//   ln -s /path/to/sluice/bin/sluice-cni.js /opt/cni/bin/sluice
// It runs the compiled plugin (npm run build makes dist/). It finds dist/ next to its real
// path (symlinks are followed), else under $SLUICE_ROOT, else next to the real path of the
// `sluice` command on PATH, so a copy works too on a node where sluice is installed.
//
// Written to run both as an ES module (here, under the package's "type": "module") and as
// CommonJS (a copy named `sluice` outside any package): no static import, no import.meta,
// no top-level await; only dynamic import(), which both have.
'use strict';

const PLUGIN = ['dist', 'cni', 'plugin.js'];

function fail(msg, details) {
  // A CNI error object on stdout: that is where the runtime looks.
  process.stdout.write(`${JSON.stringify({ cniVersion: '1.1.0', code: 999, msg, details })}\n`);
  process.exitCode = 1;
}

async function locate() {
  const { existsSync, realpathSync } = await import('node:fs');
  const { delimiter, dirname, join, resolve } = await import('node:path');
  const real = (p) => {
    try {
      return realpathSync(p);
    } catch {
      return undefined;
    }
  };
  const roots = [];
  // argv[1] is the script as the runtime ran it (/opt/cni/bin/sluice): follow its links.
  const self = process.argv[1] ? real(resolve(process.argv[1])) : undefined;
  if (self) roots.push(join(dirname(self), '..'));
  if (process.env.SLUICE_ROOT) roots.push(process.env.SLUICE_ROOT);
  for (const d of [...(process.env.PATH ?? '').split(delimiter), '/usr/local/bin', '/usr/bin']) {
    const cli = d ? real(join(d, 'sluice')) : undefined;
    if (cli) roots.push(join(dirname(cli), '..'));
  }
  return roots.map((r) => join(r, ...PLUGIN)).find((p) => existsSync(p));
}

async function start() {
  const plugin = await locate();
  if (!plugin) {
    fail('cannot find the sluice CNI plugin (dist/cni/plugin.js)',
      'build sluice (npm run build), symlink this file into the CNI bin dir instead of copying it, or set SLUICE_ROOT');
    return;
  }
  const { pathToFileURL } = await import('node:url');
  let mod;
  try {
    mod = await import(pathToFileURL(plugin).href);
  } catch (e) {
    fail(`cannot load the sluice CNI plugin from ${plugin}`, String((e && e.message) || e));
    return;
  }
  process.exitCode = await mod.main();
}

start().catch((e) => fail('the sluice CNI plugin failed to start', String((e && e.message) || e)));
