/**
 * A real container runtime (podman 4.3 with its CNI backend) isolated for one test, so
 * that it calls the sluice CNI plugin the way it does on a node while the machine's own
 * /etc/cni, /var/lib/containers, /var/lib/cni and /run stay untouched:
 *
 *   - a holder process (`unshare -m --propagation unchanged`, under `setpriv --pdeathsig
 *     KILL`) owns a private mount namespace with tmpfs over /run, /var/lib, /var/tmp,
 *     /etc/cni, /dev/shm (podman's SHM locks) and /sys/fs/cgroup/unified (crun refuses the
 *     hybrid cgroup layout; containers run with cgroups disabled). /run/netns is bound
 *     back (recursively, still shared with the root mount namespace), so the network
 *     namespaces podman makes for its containers are visible to the sluice agent, which
 *     runs outside this mount namespace;
 *   - podman's configuration (containers.conf, storage.conf with the vfs driver, the CNI
 *     config and bin dirs) lives in a temporary directory, given by CONTAINERS_CONF and
 *     CONTAINERS_STORAGE_CONF; the CNI bin dir holds `sluice` -> bin/sluice-cni.js;
 *   - every podman command runs with `nsenter --mount=<holder> --net=<node netns>`, so the
 *     pods' host-side veths land in the test node's namespace.
 *
 * Teardown (also on failure): `podman rm -f -a` (the runtime sends DEL), then every
 * process left in the mount namespace, every conmon and container process podman reported
 * and the holder are killed by PID, the network namespaces podman made are removed, and
 * the temporary directory goes. The mount namespace and its tmpfs vanish with the holder.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readlinkSync, readFileSync, symlinkSync, writeFileSync, copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO, sh, tempDir, type RunResult, type Teardown } from './env.js';
import { exitStatus, spawnCollect } from './spawn.js';

export const BUSYBOX = '/bin/busybox';
export const IMAGE = 'localhost/sluice-busybox:test';
const APPLETS = ['sh', 'ping', 'ip', 'sleep', 'cat', 'ls', 'hostname', 'true'];

/** Paths a rootful podman + CNI writes to by default: none of them may change on the machine. */
export const HOST_PATHS = ['/etc/cni', '/var/lib/containers', '/var/lib/cni', '/run/containers', '/run/libpod', '/run/crun', '/run/cni', '/dev/shm/libpod_lock'];

/** Why podman cannot run here at all (undefined when the binaries are there). */
export function podmanMissing(): string | undefined {
  for (const [bin, pkg] of [['podman', 'podman'], ['crun', 'crun'], ['conmon', 'conmon'], ['unshare', 'util-linux'], ['setpriv', 'util-linux']] as const) {
    if (sh('sh', ['-c', `command -v ${bin}`]).status !== 0) return `${bin} is not installed (Debian package ${pkg}: apt-get install -y podman busybox-static)`;
  }
  if (!existsSync(BUSYBOX)) return `${BUSYBOX} is missing (Debian package busybox-static)`;
  if (!existsSync('/run/netns')) return '/run/netns does not exist (make a network namespace first)';
  return undefined;
}

/** A listing of HOST_PATHS (recursive, names only): equal before and after means podman wrote nothing there. */
export function hostSnapshot(): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  const walk = (p: string, acc: string[]) => {
    let entries: string[];
    try {
      entries = readdirSync(p);
    } catch {
      return;
    }
    for (const e of entries.sort()) {
      acc.push(join(p, e));
      walk(join(p, e), acc);
    }
  };
  for (const p of HOST_PATHS) {
    const acc: string[] = [];
    if (existsSync(p)) {
      acc.push(p);
      walk(p, acc);
    }
    out[p] = acc;
  }
  return out;
}

export interface PodmanOptions {
  /** The network namespace podman runs in (the test node's). */
  netns: string;
  /** The CNI network: name and the agent's socket. */
  network: string;
  socket: string;
  cniVersion?: string;
  /** Per-command limit (default 60 s); a command still running then is killed by PID. */
  timeoutMs?: number;
}

export interface Podman {
  readonly dir: string;
  readonly holderPid: number;
  /** Runs `podman ARGS` in the isolated setup; `env` adds environment variables (e.g. CNI_ARGS). */
  run(args: readonly string[], o?: { env?: Record<string, string>; timeoutMs?: number }): Promise<RunResult & { timedOut: boolean }>;
  /** Like run() but throws on a non-zero exit; returns stdout trimmed. */
  must(args: readonly string[], o?: { env?: Record<string, string> }): Promise<string>;
  /** Imports the busybox image (IMAGE). */
  importBusybox(): Promise<void>;
  /** Records a container's conmon and init PIDs and its netns, for teardown. */
  track(container: string): Promise<{ conmonPid: number; pid: number; sandbox: string }>;
  /** Network namespaces (/run/netns/NAME) podman made so far that still exist. */
  sandboxes(): string[];
}

function mntNs(pid: number | string): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/ns/mnt`);
  } catch {
    return undefined;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) Z/.test(stat);
  } catch {
    return false;
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Runs a command, killing it by PID after `timeoutMs`. */
async function runAsync(cmd: string, args: readonly string[], env: NodeJS.ProcessEnv, timeoutMs: number, track: Set<ChildProcess>): Promise<RunResult & { timedOut: boolean }> {
  const c = await spawnCollect(cmd, args, { env, timeoutMs, track });
  return { status: exitStatus(c), stdout: c.stdout, stderr: c.stderr, timedOut: c.timedOut };
}

const HOLDER_SCRIPT = `set -e
hold="$1"
mount --rbind /run/netns "$hold"
mount -t tmpfs -o mode=755 sluice-test-run /run
mkdir /run/netns
mount --move "$hold" /run/netns
mount -t tmpfs -o mode=755 sluice-test-varlib /var/lib
mount -t tmpfs -o mode=1777 sluice-test-vartmp /var/tmp
mount -t tmpfs -o mode=755 sluice-test-etccni /etc/cni
mount -t tmpfs -o mode=1777 sluice-test-shm /dev/shm
if [ -d /sys/fs/cgroup/unified ]; then mount -t tmpfs -o mode=755 sluice-test-cgroup /sys/fs/cgroup/unified; fi
echo ready
exec sleep infinity
`;

/**
 * Sets up the isolated podman (see the file comment) and registers its teardown on `t`.
 * Register it after the agent, so that teardown (last in, first out) runs while the agent
 * still answers the DELs.
 */
export async function isolatedPodman(t: Teardown, prefix: string, o: PodmanOptions): Promise<Podman> {
  const dir = tempDir(t, `${prefix}-podman`);
  const procs = new Set<ChildProcess>();
  const tracked = new Map<string, { conmonPid: number; pid: number; sandbox: string }>();
  const netnsBefore = new Set(readdirSync('/run/netns'));
  const timeoutMs = o.timeoutMs ?? 60_000;
  for (const d of ['cni-bin', 'net.d', 'conf', 'hold', 'img/bin']) mkdirSync(join(dir, d), { recursive: true });
  symlinkSync(join(REPO, 'bin', 'sluice-cni.js'), join(dir, 'cni-bin', 'sluice'));
  writeFileSync(join(dir, 'net.d', `10-${o.network}.conflist`), `${JSON.stringify({
    cniVersion: o.cniVersion ?? '1.0.0', name: o.network, plugins: [{ type: 'sluice', socket: o.socket }],
  }, null, 2)}\n`);
  writeFileSync(join(dir, 'conf', 'containers.conf'), `[containers]
cgroups = "disabled"
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
pids_limit = 0
log_driver = "k8s-file"

[network]
network_backend = "cni"
cni_plugin_dirs = ["${join(dir, 'cni-bin')}"]
network_config_dir = "${join(dir, 'net.d')}"

[engine]
cgroup_manager = "cgroupfs"
events_logger = "none"
runtime = "crun"
`);
  // graphroot/runroot are the defaults, but inside the holder's tmpfs over /var/lib and /run.
  writeFileSync(join(dir, 'conf', 'storage.conf'), `[storage]
driver = "vfs"
graphroot = "/var/lib/containers/storage"
runroot = "/run/containers/storage"
`);

  const holder = spawn('/usr/bin/setpriv', ['--pdeathsig', 'KILL', 'unshare', '-m', '--propagation', 'unchanged',
    'sh', '-c', HOLDER_SCRIPT, 'sh', join(dir, 'hold')], { stdio: ['ignore', 'pipe', 'pipe'] });
  const holderExit = new Promise<void>((resolve) => holder.once('exit', () => resolve()));
  const onExit = () => {
    if (holder.pid !== undefined && holder.exitCode === null && holder.signalCode === null) process.kill(holder.pid, 'SIGKILL');
  };
  process.on('exit', onExit);

  const env = (extra: Record<string, string> = {}): NodeJS.ProcessEnv => ({
    PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
    HOME: dir,
    CONTAINERS_CONF: join(dir, 'conf', 'containers.conf'),
    CONTAINERS_STORAGE_CONF: join(dir, 'conf', 'storage.conf'),
    ...extra,
  });
  const podmanArgs = (args: readonly string[]) => [`--mount=/proc/${holder.pid}/ns/mnt`, `--net=/run/netns/${o.netns}`, 'podman', ...args];

  // Teardown: everything by PID, never by name; it must not throw (tap would drop the teardowns after it).
  t.teardown(async () => {
    try {
      if (holder.exitCode === null && holder.signalCode === null && holder.pid !== undefined) {
        const rm = await runAsync('nsenter', podmanArgs(['rm', '-f', '-a', '-t', '0']), env(), 60_000, procs).catch(() => undefined);
        if (rm && rm.status !== 0) process.stderr.write(`podman rm -f -a failed: ${rm.stderr}\n`);
        const ns = mntNs(holder.pid);
        const pids = new Set<number>();
        for (const c of tracked.values()) for (const p of [c.pid, c.conmonPid]) if (p > 0) pids.add(p);
        for (const e of readdirSync('/proc')) {
          if (/^\d+$/.test(e) && Number(e) !== holder.pid && ns !== undefined && mntNs(e) === ns) pids.add(Number(e));
        }
        for (const p of pids) {
          if (alive(p)) {
            try {
              process.kill(p, 'SIGKILL');
            } catch { /* already gone */ }
          }
        }
      }
      for (const p of procs) if (p.pid !== undefined && p.exitCode === null) process.kill(p.pid, 'SIGKILL');
      if (holder.pid !== undefined && holder.exitCode === null && holder.signalCode === null) {
        process.kill(holder.pid, 'SIGKILL');
        await holderExit;
      }
      process.off('exit', onExit);
      // Sandboxes podman made and did not remove (a failure half-way).
      for (const n of readdirSync('/run/netns')) {
        if (!netnsBefore.has(n) && /^(netns|cni)-[0-9a-f-]+$/.test(n)) sh('ip', ['netns', 'del', n]);
      }
    } catch (e) {
      process.stderr.write(`isolated podman teardown: ${(e as Error).stack}\n`);
    }
  });

  let holderErr = '';
  holder.stderr.on('data', (d: Buffer) => {
    holderErr += d.toString();
  });
  await new Promise<void>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`the mount-namespace holder did not start: ${holderErr}`)), 10_000);
    holder.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('ready')) {
        clearTimeout(timer);
        resolve();
      }
    });
    holder.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the mount-namespace holder exited (${code}): ${holderErr}`));
    });
  });

  const run: Podman['run'] = (args, ro = {}) => runAsync('nsenter', podmanArgs(args), env(ro.env), ro.timeoutMs ?? timeoutMs, procs);
  const must: Podman['must'] = async (args, ro = {}) => {
    const r = await run(args, ro);
    if (r.status !== 0) throw new Error(`podman ${args.join(' ')} failed (${r.timedOut ? 'timed out' : r.status}): ${r.stderr}${r.stdout}`);
    return r.stdout.trim();
  };
  return {
    dir,
    holderPid: holder.pid!,
    run,
    must,
    async importBusybox() {
      const root = join(dir, 'img');
      copyFileSync(BUSYBOX, join(root, 'bin', 'busybox'));
      for (const a of APPLETS) symlinkSync('busybox', join(root, 'bin', a));
      const tar = join(dir, 'busybox.tar');
      const r = sh('tar', ['-C', root, '--owner=0', '--group=0', '-cf', tar, '.']);
      if (r.status !== 0) throw new Error(`tar failed: ${r.stderr}`);
      await must(['import', '--quiet', tar, IMAGE]);
    },
    async track(container) {
      const out = await must(['inspect', '--format', '{{.State.ConmonPid}} {{.State.Pid}} {{.NetworkSettings.SandboxKey}}', container]);
      const [conmon, pid, sandbox] = out.split(' ');
      const c = { conmonPid: Number(conmon), pid: Number(pid), sandbox: sandbox ?? '' };
      tracked.set(container, c);
      return c;
    },
    sandboxes() {
      return readdirSync('/run/netns').filter((n) => !netnsBefore.has(n) && /^(netns|cni)-[0-9a-f-]+$/.test(n)).map((n) => `/run/netns/${n}`);
    },
  };
}

export { sleep };
