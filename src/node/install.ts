/**
 * `sluice node install` and `sluice node uninstall`: put sluice on a node the way Cilium
 * does without Kubernetes: the CNI plugin and its network configuration, the node config,
 * a persistent bpffs mount and the agent's systemd unit.
 *
 * The top half is pure (paths, what each file contains, whose a file is); the bottom half
 * plans against the filesystem first (every check, no write) and only then applies. Both
 * commands are idempotent; every file is written atomically; nothing is written when a
 * check fails.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, fsyncSync, lstatSync, mkdirSync, openSync, readFileSync, readlinkSync, renameSync, rmSync, statSync, symlinkSync, type Stats } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, isAbsolute, join, normalize } from 'node:path';
import { pathToFileURL } from 'node:url';
import { stringify } from 'yaml';
import { isBpffs } from '../sys/bpffs.js';
import { DEFAULT_CONFIG_PATH, DEFAULTS, KEYS, type Config } from '../config/config.js';
import { loadConfig } from '../config/load.js';
import { PACKAGE_ROOT } from '../datapath/paths.js';
import { writeFileAtomic } from '../util/fsatomic.js';
import { ensureBpffs } from './node.js';

// ---------------------------------------------------------------------------------------
// Pure: names, paths, file contents, ownership
// ---------------------------------------------------------------------------------------

/** Where things go; every one an absolute path. */
export interface InstallPaths {
  cniBinDir: string;
  cniConfDir: string;
  systemdDir: string;
  /** The node config file the agent runs with. */
  configFile: string;
}

export const INSTALL_DEFAULTS: InstallPaths = {
  cniBinDir: '/opt/cni/bin',
  cniConfDir: '/etc/cni/net.d',
  systemdDir: '/etc/systemd/system',
  configFile: DEFAULT_CONFIG_PATH,
};

/** The flag that sets each path (for messages). */
export const PATH_FLAGS: Record<keyof InstallPaths, string> = {
  cniBinDir: '--cni-bin-dir',
  cniConfDir: '--cni-conf-dir',
  systemdDir: '--systemd-dir',
  configFile: '--config-file',
};

/** The plugin's name in the CNI bin dir: the network configuration's `type`. */
export const PLUGIN_NAME = 'sluice';
export const CONFLIST_NAME = '10-sluice.conflist';
export const MOUNT_UNIT = 'sys-fs-bpf.mount';
export const AGENT_UNIT = 'sluice-agent.service';
export const BPFFS = '/sys/fs/bpf';
/** The first line of every unit file sluice writes: how uninstall knows the file is ours. */
export const UNIT_MARKER = '# Installed by `sluice node install`; `sluice node uninstall` removes it.';

/** The repository (or installed package) this code runs from, and its executables. */
export interface Sources {
  root: string;
  /** bin/sluice-cni.js: the CNI plugin the link points to. */
  plugin: string;
  /** bin/sluice.js: the CLI the agent unit runs. */
  cli: string;
  /** Absolute path of the node binary the agent unit runs the CLI with. */
  node: string;
}

export function sources(root = PACKAGE_ROOT, node = process.execPath): Sources {
  const r = normalize(root).replace(/\/+$/, '') || '/';
  return { root: r, plugin: join(r, 'bin', 'sluice-cni.js'), cli: join(r, 'bin', 'sluice.js'), node };
}

export interface Targets {
  plugin: string;
  conflist: string;
  mountUnit: string;
  agentUnit: string;
  configFile: string;
}

export function targets(p: InstallPaths): Targets {
  return {
    plugin: join(p.cniBinDir, PLUGIN_NAME),
    conflist: join(p.cniConfDir, CONFLIST_NAME),
    mountUnit: join(p.systemdDir, MOUNT_UNIT),
    agentUnit: join(p.systemdDir, AGENT_UNIT),
    configFile: p.configFile,
  };
}

// eslint-disable-next-line no-control-regex -- the control characters are what it looks for
const CONTROL_CHARS = /[\x00-\x1f\x7f]/;

/**
 * Validates and normalises the path flags (absent ones take their defaults). Returns the
 * paths and every problem found, so one error can name them all.
 */
export function checkPaths(raw: Partial<Record<keyof InstallPaths, unknown>>): { paths: InstallPaths; problems: string[] } {
  const problems: string[] = [];
  const paths = { ...INSTALL_DEFAULTS };
  for (const key of Object.keys(INSTALL_DEFAULTS) as (keyof InstallPaths)[]) {
    const v = raw[key] ?? INSTALL_DEFAULTS[key];
    const flag = PATH_FLAGS[key];
    if (typeof v !== 'string' || v === '') {
      problems.push(`${flag}: expected an absolute path, got ${JSON.stringify(v)}`);
    } else if (CONTROL_CHARS.test(v)) {
      problems.push(`${flag}: ${JSON.stringify(v)} contains control characters`);
    } else if (!isAbsolute(v)) {
      problems.push(`${flag}: expected an absolute path, got '${v}'`);
    } else {
      const n = normalize(v).replace(/\/+$/, '') || '/';
      if (key === 'configFile' && (n === '/' || v.endsWith('/'))) problems.push(`${flag}: '${v}' names a directory, not a file`);
      paths[key] = n;
    }
  }
  return { paths, problems };
}

/** The agent's socket for a node config (what the plugin's `socket` field must say). */
export function agentSocket(cfg: Pick<Config, 'runDir'>): string {
  return join(cfg.runDir, 'agent.sock');
}

export function renderConflist(cfg: Pick<Config, 'runDir'>): string {
  const doc = { cniVersion: '1.0.0', name: 'sluice', plugins: [{ type: PLUGIN_NAME, socket: agentSocket(cfg) }] };
  return `${JSON.stringify(doc, null, 2)}\n`;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * A conflist is ours when it has the shape install writes: named "sluice" with exactly one
 * plugin, of type "sluice" (any socket). One an administrator extended (a chained plugin, a
 * different name) is theirs.
 */
export function isOurConflist(text: string): boolean {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return false;
  }
  if (!isObject(doc) || doc.name !== 'sluice' || !Array.isArray(doc.plugins) || doc.plugins.length !== 1) return false;
  const p: unknown = doc.plugins[0];
  return isObject(p) && p.type === PLUGIN_NAME;
}

export function isOurUnit(text: string): boolean {
  return text.split('\n', 1)[0] === UNIT_MARKER;
}

/** A symlink target that is sluice's plugin (this checkout's or another's, even dangling). */
export function isOurPluginLink(target: string): boolean {
  return /(^|\/)bin\/sluice-cni\.js$/.test(target);
}

/** One word of a systemd command line: quoted when needed, `%` and `$` escaped. */
export function systemdWord(arg: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(arg)) return arg.replace(/%/g, '%%');
  const q = arg.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/%/g, '%%').replace(/\$/g, '$$$$');
  return `"${q}"`;
}

/** The agent's command line as ExecStart says it. */
export function agentCommand(src: Sources, configFile: string): string {
  return [src.node, src.cli, 'agent', '--config', configFile].map(systemdWord).join(' ');
}

function docsUrl(src: Sources): string {
  return pathToFileURL(join(src.root, 'README.md')).href;
}

/** sys-fs-bpf.mount: bpffs at /sys/fs/bpf at every boot (as Cilium installs it). */
export function renderMountUnit(src: Sources): string {
  return `${UNIT_MARKER}
[Unit]
Description=BPF filesystem for the pinned sluice datapath
Documentation=${docsUrl(src)}
DefaultDependencies=no
Before=local-fs.target umount.target
After=swap.target

[Mount]
What=bpffs
Where=${BPFFS}
Type=bpf
Options=rw,nosuid,nodev,noexec,relatime,mode=700

[Install]
WantedBy=multi-user.target
`;
}

/** sluice-agent.service: the node agent, restarted whenever it exits. */
export function renderAgentUnit(src: Sources, configFile: string): string {
  return `${UNIT_MARKER}
[Unit]
Description=sluice node agent (eBPF pod networking)
Documentation=${docsUrl(src)}
Requires=${MOUNT_UNIT}
Wants=network-online.target
After=${MOUNT_UNIT} network-online.target

[Service]
Type=simple
ExecStart=${agentCommand(src, configFile)}
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

/** The value a key has when the config does not set it. */
function defaultOf(key: keyof Config, host: string): unknown {
  return key === 'nodeName' ? host : DEFAULTS[key];
}

/** The node config file install writes: the keys of `cfg` that differ from their defaults. */
export function renderNodeConfig(cfg: Config, host = hostname()): string {
  const set: Record<string, unknown> = {};
  for (const key of Object.keys(KEYS) as (keyof Config)[]) {
    if (cfg[key] !== defaultOf(key, host)) set[key] = cfg[key];
  }
  const head = '# sluice node configuration, written by `sluice node install` (which never overwrites it).\n'
    + '# Keys not set here take their defaults (README: Configuration); the agent reads this file.\n';
  return Object.keys(set).length ? head + stringify(set) : head;
}

/** Keys whose values differ between two configs, described for an error message. */
export function configDifferences(have: Config, want: Config): string[] {
  const out: string[] = [];
  for (const key of Object.keys(KEYS) as (keyof Config)[]) {
    if (have[key] !== want[key]) out.push(`${key} is ${JSON.stringify(have[key])} there, ${JSON.stringify(want[key])} here`);
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Planning and applying
// ---------------------------------------------------------------------------------------

export type InstallAction = 'created' | 'updated' | 'unchanged' | 'skipped';
export type UninstallAction = 'removed' | 'absent' | 'skipped';

export interface Item<A> {
  item: string;
  path: string;
  action: A;
}

export interface Report<A> {
  items: Item<A>[];
  /** What was skipped and why, what was left alone, what to do next. */
  notes: string[];
}

/** Whether and how to drive systemd. */
export interface Systemd {
  use: boolean;
  /** Why not (when `use` is false). */
  reason?: string;
  /** The systemctl executable (tests point it at a fake). */
  systemctl?: string;
}

/** systemd is running when /run/systemd/system exists (what sd_booted(3) checks). */
export function systemdMode(noSystemctl: boolean, runtimeDir = '/run/systemd/system'): Systemd {
  if (noSystemctl) return { use: false, reason: '--no-systemctl' };
  if (!existsSync(runtimeDir)) return { use: false, reason: `systemd is not running (no ${runtimeDir})` };
  return { use: true };
}

interface Step<A> extends Item<A> {
  apply?: () => void;
}

function lstat(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined; // (ENOTDIR: a parent is a file)
    throw e;
  }
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Points `path` at `target` atomically (a new link renamed over the old entry). */
function symlinkAtomic(target: string, path: string): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  rmSync(tmp, { force: true });
  symlinkSync(target, tmp);
  renameSync(tmp, path);
  fsyncDir(dirname(path));
}

function removeEntry(path: string): void {
  rmSync(path, { force: true });
  fsyncDir(dirname(path));
}

/** `dir` is a directory, or can become one (its nearest existing ancestor is a directory). */
function dirProblem(flag: string, dir: string): string | undefined {
  let probe = dir;
  while (!lstat(probe) && probe !== '/') probe = dirname(probe);
  let isDir = false;
  try {
    isDir = statSync(probe).isDirectory(); // through a symlink
  } catch { /* a dangling symlink */ }
  if (isDir) return undefined;
  return probe === dir ? `${flag}: ${dir} is not a directory` : `${flag}: cannot create ${dir}: ${probe} is not a directory`;
}

function describe(st: Stats, path: string): string {
  if (st.isSymbolicLink()) return `a symlink to ${readlinkSync(path)}`;
  if (st.isDirectory()) return 'a directory';
  if (st.isFile()) return 'a file';
  return 'not a regular file';
}

/** A file install writes whole; an existing one is replaced only when it is ours (or --force). */
function fileStep(item: string, path: string, content: string, ours: (text: string) => boolean, force: boolean, problems: string[]): Step<InstallAction> {
  const write = () => writeFileAtomic(path, content, 0o644);
  const st = lstat(path);
  if (!st) return { item, path, action: 'created', apply: write };
  if (st.isDirectory()) {
    problems.push(`${path} is a directory`);
    return { item, path, action: 'unchanged' };
  }
  const text = readText(path);
  if (st.isFile() && text === content) return { item, path, action: 'unchanged' };
  if (!force && (text === undefined || !ours(text))) {
    problems.push(`${path} exists and is not sluice's (${describe(st, path)}): remove it or pass --force to replace it`);
  }
  return { item, path, action: 'updated', apply: write };
}

function pluginStep(link: string, src: Sources, force: boolean, problems: string[]): Step<InstallAction> {
  const item = 'cni-plugin';
  const apply = () => symlinkAtomic(src.plugin, link);
  const st = lstat(link);
  if (!st) return { item, path: link, action: 'created', apply };
  if (st.isDirectory()) {
    problems.push(`${link} is a directory`);
    return { item, path: link, action: 'unchanged' };
  }
  if (st.isSymbolicLink()) {
    const to = readlinkSync(link);
    if (to === src.plugin) return { item, path: link, action: 'unchanged' };
    if (isOurPluginLink(to)) return { item, path: link, action: 'updated', apply };
  } else if (st.isFile() && readText(link) === readText(src.plugin)) {
    return { item, path: link, action: 'updated', apply }; // a copy of our plugin becomes the link
  }
  if (!force) problems.push(`${link} exists and is not sluice's plugin (${describe(st, link)}): remove it or pass --force to replace it`);
  return { item, path: link, action: 'updated', apply };
}

function systemctl(sd: Systemd, args: readonly string[], allowFail = false): { status: number; out: string } {
  const bin = sd.systemctl ?? 'systemctl';
  const r = spawnSync(bin, args, { encoding: 'utf8' });
  if (r.error) throw new Error(`${bin} ${args.join(' ')}: ${(r.error as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found' : r.error.message}`);
  const status = r.status ?? -1;
  if (status !== 0 && !allowFail) throw new Error(`${bin} ${args.join(' ')} failed (exit ${status}): ${(r.stderr || r.stdout).trim() || 'no output'}`);
  return { status, out: r.stdout.trim() };
}

function unitState(sd: Systemd, unit: string): { enabled: boolean; active: boolean } {
  return {
    enabled: systemctl(sd, ['is-enabled', '--quiet', unit], true).status === 0,
    active: systemctl(sd, ['is-active', '--quiet', unit], true).status === 0,
  };
}

function systemctlProblem(sd: Systemd): string | undefined {
  if (!sd.use) return undefined;
  try {
    systemctl(sd, ['--version']);
    return undefined;
  } catch (e) {
    return `systemd is running but systemctl cannot be run: ${(e as Error).message}`;
  }
}

function finish<A>(steps: Step<A>[], problems: string[], notes: string[]): Report<A> {
  if (problems.length) throw new Error(problems.join('; '));
  for (const s of steps) s.apply?.();
  return { items: steps.map(({ item, path, action }) => ({ item, path, action })), notes };
}

export interface InstallOptions {
  paths: InstallPaths;
  /** The resolved node config (what the config file says, or will say once written). */
  cfg: Config;
  force?: boolean;
  systemd: Systemd;
  src?: Sources;
  /** For the defaults of the written config (nodeName). */
  host?: string;
  /** Whether this process may mount bpffs. */
  root?: boolean;
}

/**
 * Installs sluice on the node. Checks everything first and throws, having written nothing,
 * when something is wrong. Order of the writes: config, units, bpffs, plugin, systemd, and
 * the network configuration last, so a runtime sees sluice only once it can run.
 */
export function installNode(o: InstallOptions): Report<InstallAction> {
  const src = o.src ?? sources();
  const t = targets(o.paths);
  const force = o.force ?? false;
  const problems: string[] = [];
  const notes: string[] = [];

  for (const key of ['cniBinDir', 'cniConfDir', 'systemdDir'] as const) {
    const p = dirProblem(PATH_FLAGS[key], o.paths[key]);
    if (p) problems.push(p);
  }
  const cfgDirProblem = dirProblem(PATH_FLAGS.configFile, dirname(t.configFile));
  if (cfgDirProblem) problems.push(cfgDirProblem);
  for (const [what, path] of [['the CNI plugin', src.plugin], ['the sluice command', src.cli], ['the compiled plugin (npm run build)', join(src.root, 'dist', 'cni', 'plugin.js')]] as const) {
    if (!existsSync(path)) problems.push(`${what} is missing: ${path}`);
  }

  // The node config: written when absent; an existing one must say what we were told.
  let configStep: Step<InstallAction>;
  const cst = lstat(t.configFile);
  if (!cst) {
    const text = renderNodeConfig(o.cfg, o.host);
    configStep = { item: 'node-config', path: t.configFile, action: 'created', apply: () => writeFileAtomic(t.configFile, text, 0o644) };
  } else {
    configStep = { item: 'node-config', path: t.configFile, action: 'unchanged' };
    if (cst.isDirectory()) {
      problems.push(`${PATH_FLAGS.configFile}: ${t.configFile} is a directory`);
    } else {
      try {
        const diff = configDifferences(loadConfig(t.configFile, {}), o.cfg);
        if (diff.length) {
          problems.push(`${t.configFile} exists (install never overwrites it) and differs from the configuration given: ${diff.join(', ')}; edit the file, or give flags (or --config) that match it`);
        }
      } catch (e) {
        problems.push(`the existing ${t.configFile} is not usable: ${(e as Error).message}`);
      }
    }
  }

  const mountUnit = fileStep('bpffs-unit', t.mountUnit, renderMountUnit(src), isOurUnit, force, problems);
  const agentUnit = fileStep('agent-unit', t.agentUnit, renderAgentUnit(src, t.configFile), isOurUnit, force, problems);

  let bpffs: Step<InstallAction>;
  if (isBpffs(BPFFS)) {
    bpffs = { item: 'bpffs', path: BPFFS, action: 'unchanged' };
  } else {
    if (!(o.root ?? process.getuid?.() === 0)) problems.push(`${BPFFS} is not a BPF filesystem and mounting one needs root`);
    bpffs = { item: 'bpffs', path: BPFFS, action: 'created', apply: () => ensureBpffs(BPFFS) };
  }

  const plugin = pluginStep(t.plugin, src, force, problems);
  const conflist = fileStep('cni-conflist', t.conflist, renderConflist(o.cfg), isOurConflist, force, problems);

  const units = `${MOUNT_UNIT} ${AGENT_UNIT}`;
  let sd: Step<InstallAction>;
  const sdProblem = systemctlProblem(o.systemd);
  if (sdProblem) problems.push(sdProblem);
  if (!o.systemd.use) {
    sd = { item: 'systemd', path: units, action: 'skipped' };
    notes.push(`${o.systemd.reason}: systemctl not run; to start sluice under systemd: systemctl daemon-reload && systemctl enable --now ${units}`);
    notes.push(`the agent's command: ${agentCommand(src, t.configFile)}`);
  } else if (sdProblem) {
    sd = { item: 'systemd', path: units, action: 'skipped' };
  } else {
    const m = unitState(o.systemd, MOUNT_UNIT);
    const a = unitState(o.systemd, AGENT_UNIT);
    const filesChanged = mountUnit.action !== 'unchanged' || agentUnit.action !== 'unchanged';
    const restart = agentUnit.action === 'updated' && a.active;
    const action: InstallAction = !a.enabled && !a.active ? 'created'
      : m.enabled && m.active && a.enabled && a.active && !filesChanged ? 'unchanged' : 'updated';
    sd = {
      item: 'systemd', path: units, action,
      apply: action === 'unchanged' ? undefined : () => {
        systemctl(o.systemd, ['daemon-reload']);
        systemctl(o.systemd, ['enable', '--now', MOUNT_UNIT, AGENT_UNIT]);
        if (restart) systemctl(o.systemd, ['restart', AGENT_UNIT]);
      },
    };
  }

  return finish([configStep, mountUnit, agentUnit, bpffs, plugin, sd, conflist], problems, notes);
}

export interface UninstallOptions {
  paths: InstallPaths;
  systemd: Systemd;
}

/** Removes `path` when `ours` says it is sluice's; leaves anything else alone (with a note). */
function removeStep(item: string, path: string, ours: (st: Stats) => boolean, notes: string[]): Step<UninstallAction> {
  const st = lstat(path);
  if (!st) return { item, path, action: 'absent' };
  if (st.isDirectory() || !ours(st)) {
    notes.push(`${path} is not sluice's (${describe(st, path)}): left alone`);
    return { item, path, action: 'skipped' };
  }
  return { item, path, action: 'removed', apply: () => removeEntry(path) };
}

/**
 * Removes what install put on the node: stops and disables the agent, disables the bpffs
 * mount (without unmounting: the pinned datapath lives there), removes the network
 * configuration, the unit files and the plugin link. Keeps the node config, the pinned
 * datapath and the state (`sluice node reset` removes those).
 */
export function uninstallNode(o: UninstallOptions): Report<UninstallAction> {
  const t = targets(o.paths);
  const problems: string[] = [];
  const notes: string[] = [];
  const unitIsOurs = (path: string) => (st: Stats) => st.isFile() && isOurUnit(readText(path) ?? '');
  const conflistIsOurs = (st: Stats) => !st.isDirectory() && isOurConflist(readText(t.conflist) ?? '');
  const pluginIsOurs = (st: Stats) => {
    if (st.isSymbolicLink()) return isOurPluginLink(readlinkSync(t.plugin));
    return st.isFile() && readText(t.plugin) === readText(sources().plugin);
  };

  const conflist = removeStep('cni-conflist', t.conflist, conflistIsOurs, notes);
  const agentUnit = removeStep('agent-unit', t.agentUnit, unitIsOurs(t.agentUnit), notes);
  const mountUnit = removeStep('bpffs-unit', t.mountUnit, unitIsOurs(t.mountUnit), notes);
  const plugin = removeStep('cni-plugin', t.plugin, pluginIsOurs, notes);

  const units = `${MOUNT_UNIT} ${AGENT_UNIT}`;
  const ourUnits = [agentUnit, mountUnit].filter((s) => s.action === 'removed');
  let stop: Step<UninstallAction>;
  let reload: (() => void) | undefined;
  const sdProblem = systemctlProblem(o.systemd);
  if (sdProblem) problems.push(sdProblem);
  if (!ourUnits.length) {
    stop = { item: 'systemd', path: units, action: 'absent' };
  } else if (!o.systemd.use) {
    stop = { item: 'systemd', path: units, action: 'skipped' };
    notes.push(`${o.systemd.reason}: systemctl not run; under systemd run: systemctl disable --now ${AGENT_UNIT}; systemctl disable ${MOUNT_UNIT}; systemctl daemon-reload`);
  } else {
    stop = {
      item: 'systemd', path: units, action: 'removed',
      apply: () => {
        if (agentUnit.action === 'removed') systemctl(o.systemd, ['disable', '--now', AGENT_UNIT]);
        // Disabled, not stopped: stopping the mount would unmount bpffs under the pinned datapath.
        if (mountUnit.action === 'removed') systemctl(o.systemd, ['disable', MOUNT_UNIT]);
      },
    };
    reload = () => systemctl(o.systemd, ['daemon-reload']); // once the unit files are gone
  }
  if (mountUnit.action === 'removed') notes.push(`bpffs stays mounted at ${BPFFS}: the pinned datapath lives there`);
  notes.push(`kept ${t.configFile} (the node config), the pinned datapath and the node's state: \`sluice node reset\` removes the datapath, endpoints and state`);

  const report = finish([conflist, stop, agentUnit, mountUnit, plugin], problems, notes);
  reload?.();
  return report;
}
