/**
 * `sluice node install` / `sluice node uninstall` run as a person runs them (the compiled
 * CLI, bin/sluice.js), against temporary directories in place of /opt/cni/bin,
 * /etc/cni/net.d, /etc/systemd/system and /etc/sluice, with --no-systemctl (this machine
 * runs no systemd). Asserts the exact files, the plugin link (and that the plugin answers
 * through it), idempotency, refusal to clobber what is not sluice's, -o json, and that bad
 * input is one clear error that writes nothing. The systemctl calls are checked in process
 * against a fake systemctl.
 *
 * Build first: npx tsc -p tsconfig.json
 */
import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import {
  chmodSync, existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, symlinkSync, writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { resolveConfig } from '../../src/config/config.js';
import { installNode, uninstallNode, type InstallPaths } from '../../src/node/install.js';
import { IS_ROOT, REPO, SLUICE_BIN, sh, tempDir, type RunResult } from '../helpers/env.js';

const NODE = process.execPath;
const PLUGIN_SRC = join(REPO, 'bin', 'sluice-cni.js');

interface Row { item: string; path: string; action: string }
interface Report { items: Row[]; notes: string[] }

/** The directories of one install, all under a fresh temp dir. */
function layout(t: Test) {
  const T = tempDir(t, 'slt-install');
  const paths: InstallPaths = {
    cniBinDir: join(T, 'bin'), cniConfDir: join(T, 'net.d'), systemdDir: join(T, 'systemd'), configFile: join(T, 'config.yaml'),
  };
  const flags = [
    '--cni-bin-dir', paths.cniBinDir, '--cni-conf-dir', paths.cniConfDir, '--systemd-dir', paths.systemdDir,
    '--config-file', paths.configFile, '--no-systemctl',
  ];
  return {
    T, paths, flags,
    plugin: join(paths.cniBinDir, 'sluice'),
    conflist: join(paths.cniConfDir, '10-sluice.conflist'),
    mountUnit: join(paths.systemdDir, 'sys-fs-bpf.mount'),
    agentUnit: join(paths.systemdDir, 'sluice-agent.service'),
  };
}

/** The CLI, with flags of the root program first. (Test machines have no /etc/sluice/config.yaml.) */
function sluice(args: readonly string[], root: readonly string[] = []): RunResult {
  return sh(NODE, [SLUICE_BIN, ...root, ...args]);
}

function json(t: Test, r: RunResult): Report {
  t.equal(r.status, 0, 'exit 0', { stderr: r.stderr });
  return JSON.parse(r.stdout) as Report;
}

function actions(r: Report): Record<string, string> {
  return Object.fromEntries(r.items.map((i) => [i.item, i.action]));
}

/** Every entry under `dir` with what it is: file contents, link targets. */
function tree(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (!existsSync(dir)) return out;
  for (const rel of readdirSync(dir, { recursive: true }).map(String).sort()) {
    const p = join(dir, rel);
    const st = lstatSync(p);
    out[rel] = st.isSymbolicLink() ? `-> ${readlinkSync(p)}` : st.isDirectory() ? 'dir' : `${(st.mode & 0o777).toString(8)} ${readFileSync(p, 'utf8')}`;
  }
  return out;
}

function assertError(t: Test, r: RunResult, message: RegExp, what: string): void {
  t.not(r.status, 0, `${what}: non-zero exit`);
  t.ok(r.stderr.startsWith('sluice: '), `${what}: stderr starts with "sluice: "`, { stderr: r.stderr });
  t.match(r.stderr, message, `${what}: says what is wrong`, { stderr: r.stderr });
  t.equal(r.stdout, '', `${what}: nothing on stdout`);
}

function expectedAgentUnit(configFile: string): string {
  return `# Installed by \`sluice node install\`; \`sluice node uninstall\` removes it.
[Unit]
Description=sluice node agent (eBPF pod networking)
Documentation=file://${REPO.replace(/\/$/, '')}/README.md
Requires=sys-fs-bpf.mount
Wants=network-online.target
After=sys-fs-bpf.mount network-online.target

[Service]
Type=simple
ExecStart=${NODE} ${join(REPO, 'bin', 'sluice.js')} agent --config ${configFile}
Restart=always
RestartSec=2
# A stop or restart sends SIGTERM to the agent only: the datapath is pinned in bpffs and
# keeps forwarding while the agent is away.
KillMode=process
KillSignal=SIGTERM
LimitMEMLOCK=infinity

[Install]
WantedBy=multi-user.target
`;
}

const EXPECTED_MOUNT_UNIT = `# Installed by \`sluice node install\`; \`sluice node uninstall\` removes it.
[Unit]
Description=BPF filesystem for the pinned sluice datapath
Documentation=file://${REPO.replace(/\/$/, '')}/README.md
DefaultDependencies=no
Before=local-fs.target umount.target
After=swap.target

[Mount]
What=bpffs
Where=/sys/fs/bpf
Type=bpf
Options=rw,nosuid,nodev,noexec,relatime,mode=700

[Install]
WantedBy=multi-user.target
`;

const CONFIG_HEAD = '# sluice node configuration, written by `sluice node install` (which never overwrites it).\n'
  + '# Keys not set here take their defaults (README: Configuration); the agent reads this file.\n';

const FILE_ITEMS = ['node-config', 'bpffs-unit', 'agent-unit', 'bpffs', 'cni-plugin', 'cni-conflist'];
const REMOVABLE = ['cni-conflist', 'agent-unit', 'bpffs-unit', 'cni-plugin'];

if (!IS_ROOT) {
  t.plan(0, 'needs root: node install may mount bpffs');
} else if (!existsSync(join(REPO, 'dist', 'cli', 'main.js')) || !existsSync(join(REPO, 'dist', 'cni', 'plugin.js'))) {
  t.fail('dist/ is missing: build first with `npx tsc -p tsconfig.json`');
} else if (spawnSync('stat', ['-f', '-c', '%T', '/sys/fs/bpf'], { encoding: 'utf8' }).stdout.trim() !== 'bpf_fs') {
  // install would mount bpffs on the machine itself: the tests stay out of that.
  t.plan(0, '/sys/fs/bpf is not bpffs here (run scripts/setup)');
} else {
  t.test('install writes exactly the plugin link, conflist, node config and units; a second install changes nothing', async (t) => {
    const L = layout(t);
    const run = join(L.T, 'run');
    const first = sluice(['node', 'install', ...L.flags, '--run-dir', run]);
    t.equal(first.status, 0, 'install succeeds', { stderr: first.stderr, stdout: first.stdout });
    t.equal(first.stderr, '', 'nothing on stderr');
    const lines = first.stdout.trimEnd().split('\n');
    t.match(lines[0], /^ITEM\s+PATH\s+ACTION$/, 'a table with ITEM, PATH, ACTION');
    t.match(first.stdout, new RegExp(`cni-plugin\\s+${L.plugin}\\s+created`), 'the plugin row');
    t.match(first.stdout, /systemd\s+sys-fs-bpf\.mount sluice-agent\.service\s+skipped/, 'systemd skipped');
    t.match(first.stdout, /note: --no-systemctl: systemctl not run; .*systemctl enable --now sys-fs-bpf\.mount sluice-agent\.service/, 'says what it skipped');

    t.same(tree(L.T), {
      bin: 'dir',
      'bin/sluice': `-> ${PLUGIN_SRC}`,
      'config.yaml': `644 ${CONFIG_HEAD}runDir: ${run}\n`,
      'net.d': 'dir',
      'net.d/10-sluice.conflist': `644 ${JSON.stringify({ cniVersion: '1.0.0', name: 'sluice', plugins: [{ type: 'sluice', socket: `${run}/agent.sock` }] }, null, 2)}\n`,
      systemd: 'dir',
      'systemd/sluice-agent.service': `644 ${expectedAgentUnit(L.paths.configFile)}`,
      'systemd/sys-fs-bpf.mount': `644 ${EXPECTED_MOUNT_UNIT}`,
    }, 'exactly these files, with these contents');
    t.same(JSON.parse(readFileSync(L.conflist, 'utf8')), {
      cniVersion: '1.0.0', name: 'sluice', plugins: [{ type: 'sluice', socket: join(run, 'agent.sock') }],
    }, 'the conflist names the agent socket of the node config');
    t.same(resolveConfig(parseYaml(readFileSync(L.paths.configFile, 'utf8')) as Record<string, unknown>, {}), resolveConfig({}, { runDir: run }),
      'the written config resolves to the config install was given');

    // Again, as JSON, without --run-dir: the existing config file is the source.
    const again = json(t, sluice(['node', 'install', ...L.flags, '-o', 'json']));
    t.same(again.items.map((i) => i.item), FILE_ITEMS.slice(0, 5).concat(['systemd', 'cni-conflist']), 'items in the order they are applied');
    for (const i of again.items) t.equal(i.action, i.item === 'systemd' ? 'skipped' : 'unchanged', `second install: ${i.item} ${i.action}`);
    t.ok(again.notes.some((n) => n.includes(`${NODE} ${join(REPO, 'bin', 'sluice.js')} agent --config ${L.paths.configFile}`)), 'notes give the agent command');
    const before = tree(L.T);
    json(t, sluice(['node', 'install', ...L.flags, '--run-dir', run, '-o', 'json']));
    t.same(tree(L.T), before, 'a third install (flags matching the file) leaves every file as it was');
  });

  t.test('the plugin answers through the installed link', async (t) => {
    const L = layout(t);
    t.equal(sluice(['node', 'install', ...L.flags]).status, 0, 'installed');
    const env = { PATH: `${dirname(NODE)}:/usr/bin:/bin`, CNI_COMMAND: 'VERSION' };
    for (const v of ['0.4.0', '1.0.0', '1.1.0']) {
      const r = spawnSync(L.plugin, [], { encoding: 'utf8', env, input: JSON.stringify({ cniVersion: v }) });
      t.equal(r.status, 0, `VERSION (${v}) exits 0`, { stdout: r.stdout, stderr: r.stderr });
      t.same(JSON.parse(r.stdout), { cniVersion: v, supportedVersions: ['0.4.0', '1.0.0', '1.1.0'] }, `VERSION (${v}): the supported versions`);
    }
  });

  t.test('uninstall removes what install made and keeps the config; a second uninstall finds everything absent', async (t) => {
    const L = layout(t);
    t.equal(sluice(['node', 'install', ...L.flags]).status, 0, 'installed');
    const r = sluice(['node', 'uninstall', ...L.flags]);
    t.equal(r.status, 0, 'uninstall succeeds', { stderr: r.stderr });
    for (const item of REMOVABLE) t.match(r.stdout, new RegExp(`${item}\\s+\\S+\\s+removed`), `${item} removed`);
    t.match(r.stdout, /systemd\s+.*\s+skipped/, 'systemd skipped (--no-systemctl)');
    t.match(r.stdout, /`sluice node reset` removes the datapath/, 'says node reset removes datapath and state');
    t.same(Object.keys(tree(L.T)), ['bin', 'config.yaml', 'net.d', 'systemd'], 'only the config file (and the directories) remain');

    const second = json(t, sluice(['node', 'uninstall', ...L.flags, '-o', 'json']));
    t.same(actions(second), { 'cni-conflist': 'absent', systemd: 'absent', 'agent-unit': 'absent', 'bpffs-unit': 'absent', 'cni-plugin': 'absent' },
      'second uninstall: everything absent');
    t.ok(second.notes.some((n) => n.includes('sluice node reset')), 'the JSON notes mention node reset');
    t.ok(existsSync(L.paths.configFile), 'the config file is kept');

    const reinstall = json(t, sluice(['node', 'install', ...L.flags, '-o', 'json']));
    t.equal(actions(reinstall)['node-config'], 'unchanged', 'a reinstall keeps the config file');
    t.equal(actions(reinstall)['cni-plugin'], 'created', 'and puts the rest back');
  });

  t.test("install refuses to clobber what is not sluice's, unless --force; uninstall leaves it", async (t) => {
    const L = layout(t);
    mkdirSync(L.paths.cniBinDir, { recursive: true });
    writeFileSync(L.plugin, '#!/bin/sh\necho other plugin\n');
    chmodSync(L.plugin, 0o755);
    const r = sluice(['node', 'install', ...L.flags]);
    assertError(t, r, new RegExp(`${L.plugin} exists and is not sluice's plugin \\(a file\\): remove it or pass --force`), 'foreign plugin');
    t.same(Object.keys(tree(L.T)), ['bin', 'bin/sluice'], 'nothing else written');
    t.equal(readFileSync(L.plugin, 'utf8'), '#!/bin/sh\necho other plugin\n', 'the foreign plugin is untouched');

    // A foreign conflist of our name, and a foreign unit: all named in one error.
    mkdirSync(L.paths.cniConfDir);
    writeFileSync(L.conflist, JSON.stringify({ cniVersion: '1.0.0', name: 'sluice', plugins: [{ type: 'sluice' }, { type: 'portmap' }] }));
    mkdirSync(L.paths.systemdDir);
    writeFileSync(L.mountUnit, '[Mount]\nWhat=bpffs\nWhere=/sys/fs/bpf\nType=bpf\n');
    const r2 = sluice(['node', 'install', ...L.flags]);
    assertError(t, r2, /not sluice's plugin \(a file\)/, 'three foreign files');
    t.match(r2.stderr, /10-sluice\.conflist exists and is not sluice's \(a file\)/, 'the conflist is named too');
    t.match(r2.stderr, /sys-fs-bpf\.mount exists and is not sluice's \(a file\)/, 'and the unit');
    t.equal(r2.stderr.trimEnd().split('\n').length, 1, 'in one line');
    t.same(Object.keys(tree(L.T)), ['bin', 'bin/sluice', 'net.d', 'net.d/10-sluice.conflist', 'systemd', 'systemd/sys-fs-bpf.mount'], 'still nothing written');

    const u = json(t, sluice(['node', 'uninstall', ...L.flags, '-o', 'json']));
    t.same(actions(u), { 'cni-conflist': 'skipped', systemd: 'absent', 'agent-unit': 'absent', 'bpffs-unit': 'skipped', 'cni-plugin': 'skipped' },
      'uninstall skips foreign files');
    t.ok(u.notes.some((n) => n.includes(`${L.plugin} is not sluice's (a file): left alone`)), 'and says so');
    t.ok(existsSync(L.plugin) && existsSync(L.conflist) && existsSync(L.mountUnit), 'they are still there');

    const f = json(t, sluice(['node', 'install', ...L.flags, '--force', '-o', 'json']));
    t.equal(actions(f)['cni-plugin'], 'updated', '--force replaces the plugin');
    t.equal(actions(f)['cni-conflist'], 'updated', '--force replaces the conflist');
    t.equal(actions(f)['bpffs-unit'], 'updated', '--force replaces the unit');
    t.equal(readlinkSync(L.plugin), PLUGIN_SRC, 'the plugin is now our link');
    t.equal(readFileSync(L.mountUnit, 'utf8'), EXPECTED_MOUNT_UNIT, 'the unit is ours');
  });

  t.test('our own older files are updated in place, without --force', async (t) => {
    const L = layout(t);
    mkdirSync(L.paths.cniBinDir, { recursive: true });
    symlinkSync('/some/old/checkout/bin/sluice-cni.js', L.plugin); // dangling, but sluice's
    mkdirSync(L.paths.cniConfDir);
    writeFileSync(L.conflist, JSON.stringify({ cniVersion: '1.0.0', name: 'sluice', plugins: [{ type: 'sluice', socket: '/old/agent.sock' }] }));
    const r = json(t, sluice(['node', 'install', ...L.flags, '-o', 'json']));
    t.equal(actions(r)['cni-plugin'], 'updated', 'an old sluice link is repointed');
    t.equal(actions(r)['cni-conflist'], 'updated', 'an old sluice conflist is rewritten');
    t.equal(readlinkSync(L.plugin), PLUGIN_SRC, 'link target');
    t.equal((JSON.parse(readFileSync(L.conflist, 'utf8')) as { plugins: { socket: string }[] }).plugins[0]!.socket, '/run/sluice/agent.sock', 'default socket');

    // The agent unit edited by hand (marker kept): install puts ours back.
    writeFileSync(L.agentUnit, `${readFileSync(L.agentUnit, 'utf8')}\n# local edit\n`);
    const r2 = json(t, sluice(['node', 'install', ...L.flags, '-o', 'json']));
    t.equal(actions(r2)['agent-unit'], 'updated', 'the agent unit is rewritten');
    t.equal(readFileSync(L.agentUnit, 'utf8'), expectedAgentUnit(L.paths.configFile), 'with our content');
  });

  t.test('bad input is one clear error and writes nothing', async (t) => {
    const L = layout(t);
    const cases: [string, string[], RegExp, string[]?][] = [
      ['relative --cni-bin-dir', ['--cni-bin-dir', 'opt/cni/bin'], /--cni-bin-dir: expected an absolute path, got 'opt\/cni\/bin'/],
      ['relative --config-file', ['--config-file', 'config.yaml'], /--config-file: expected an absolute path/],
      ['every bad path at once', ['--cni-conf-dir', 'net.d', '--systemd-dir', './systemd'], /--cni-conf-dir: expected an absolute path.*; --systemd-dir: expected an absolute path/],
      ['a directory that is a file', ['--systemd-dir', join(L.T, 'afile', 'systemd')], /--systemd-dir: cannot create .*afile\/systemd: .*afile is not a directory/],
      ['--config-file naming a directory', ['--config-file', `${L.T}/`], /--config-file: .* names a directory/],
      ['bad -o', ['-o', 'yaml'], /-o yaml: expected table or json/],
      ['bad node config flag', [], /runDir: expected an absolute path/, ['--run-dir', 'run']],
      ['unknown flag', ['--cni-dir', '/x'], /unknown option '--cni-dir'/],
    ];
    writeFileSync(join(L.T, 'afile'), 'x');
    const before = tree(L.T);
    for (const [what, extra, message, root] of cases) {
      const r = sluice(['node', 'install', ...L.flags, ...extra], root);
      assertError(t, r, message, what);
      t.same(tree(L.T), before, `${what}: nothing written`);
    }
    const u = sluice(['node', 'uninstall', ...L.flags, '--cni-bin-dir', 'rel']);
    assertError(t, u, /--cni-bin-dir: expected an absolute path/, 'uninstall with a relative dir');

    // An existing config file that disagrees with the flags: never overwritten, nothing written.
    writeFileSync(L.paths.configFile, 'runDir: /run/sluice-a\n');
    const r = sluice(['node', 'install', ...L.flags, '--run-dir', '/run/sluice-b']);
    assertError(t, r, /config\.yaml exists \(install never overwrites it\) and differs .*runDir is "\/run\/sluice-a" there, "\/run\/sluice-b" here/, 'conflicting config');
    t.same(Object.keys(tree(L.T)).sort(), ['afile', 'config.yaml'], 'nothing written');
    t.equal(readFileSync(L.paths.configFile, 'utf8'), 'runDir: /run/sluice-a\n', 'the config file is untouched');
    const ok = json(t, sluice(['node', 'install', ...L.flags, '-o', 'json']));
    t.equal(actions(ok)['node-config'], 'unchanged', 'without the flag, the existing file is used');
    t.equal((JSON.parse(readFileSync(L.conflist, 'utf8')) as { plugins: { socket: string }[] }).plugins[0]!.socket, '/run/sluice-a/agent.sock', 'its runDir names the socket');
  });

  t.test('with systemd: enable --now on install, disable on uninstall (fake systemctl)', async (t) => {
    const L = layout(t);
    const log = join(L.T, 'systemctl.log');
    const state = join(L.T, 'systemd-state');
    mkdirSync(state);
    const fake = join(L.T, 'systemctl');
    // Records every call; keeps enabled/active per unit as files in `state`.
    writeFileSync(fake, `#!/bin/sh
echo "$*" >> '${log}'
S='${state}'
case "$1" in
  --version) echo 'systemd 252 (fake)' ;;
  is-enabled) [ -e "$S/$3.enabled" ] ;;
  is-active) [ -e "$S/$3.active" ] ;;
  daemon-reload) ;;
  enable|disable)
    op=$1; shift; now=
    if [ "$1" = --now ]; then now=1; shift; fi
    for u; do
      if [ $op = enable ]; then touch "$S/$u.enabled"; else rm -f "$S/$u.enabled"; fi
      if [ -n "$now" ]; then if [ $op = enable ]; then touch "$S/$u.active"; else rm -f "$S/$u.active"; fi; fi
    done ;;
  restart) touch "$S/$2.active" ;;
  *) echo "unexpected: $*" >&2; exit 1 ;;
esac
`);
    chmodSync(fake, 0o755);
    const calls = () => {
      const lines = existsSync(log) ? readFileSync(log, 'utf8').trimEnd().split('\n') : [];
      writeFileSync(log, '');
      return lines.filter((l) => l && l !== '--version' && !l.startsWith('is-'));
    };
    const systemd = { use: true, systemctl: fake };
    const cfg = resolveConfig({}, { runDir: join(L.T, 'run') });

    const first = installNode({ paths: L.paths, cfg, systemd });
    t.equal(actions(first).systemd, 'created', 'systemd: created');
    t.same(calls(), ['daemon-reload', 'enable --now sys-fs-bpf.mount sluice-agent.service'], 'daemon-reload, then enable --now both units');
    t.same(first.notes, [], 'no notes');

    const second = installNode({ paths: L.paths, cfg, systemd });
    for (const i of second.items) t.equal(i.action, 'unchanged', `second install: ${i.item} unchanged`);
    t.same(calls(), [], 'no systemctl changes the second time');

    writeFileSync(L.agentUnit, `${readFileSync(L.agentUnit, 'utf8')}# edit\n`);
    const third = installNode({ paths: L.paths, cfg, systemd });
    t.equal(actions(third).systemd, 'updated', 'a changed agent unit: systemd updated');
    t.same(calls(), ['daemon-reload', 'enable --now sys-fs-bpf.mount sluice-agent.service', 'restart sluice-agent.service'], 'and the running agent restarted');

    const u = uninstallNode({ paths: L.paths, systemd });
    t.equal(actions(u).systemd, 'removed', 'uninstall: systemd removed');
    t.same(calls(), ['disable --now sluice-agent.service', 'disable sys-fs-bpf.mount', 'daemon-reload'],
      'the agent stopped and disabled, the mount only disabled (bpffs stays), then daemon-reload');
    t.ok(u.notes.some((n) => n.includes('bpffs stays mounted')), 'says bpffs stays mounted');
    const u2 = uninstallNode({ paths: L.paths, systemd });
    for (const i of u2.items) t.equal(i.action, 'absent', `second uninstall: ${i.item} absent`);
    t.same(calls(), [], 'no systemctl changes the second time');

    const broken = { use: true, systemctl: join(L.T, 'no-such-systemctl') };
    t.throws(() => installNode({ paths: L.paths, cfg, systemd: broken }), /systemd is running but systemctl cannot be run/, 'systemctl missing: an error');
    t.notOk(existsSync(L.agentUnit), 'and nothing written');
  });
}
