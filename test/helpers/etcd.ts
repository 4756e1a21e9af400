/**
 * A real, single-member etcd for a test: free ports on 127.0.0.1, data in a temporary
 * directory, started with Debian's /usr/bin/etcd and killed (and its data removed) at
 * teardown, also when the test fails.
 *
 * By default it serves TLS and requires client certificates (--cert-file, --key-file,
 * --trusted-ca-file, --client-cert-auth), with a CA, a server certificate (for 127.0.0.1,
 * the listen address and `sans`) and a client certificate made with openssl in its
 * temporary directory (src/lab/certs.ts): `spec()`, `tls` and `etcdctl` are what a client
 * needs. `tls: false` starts a plain-TCP etcd (for the errors of a mismatch). `stop()`/`start()` simulate an outage: the same
 * ports and data directory are reused, so clients see the same cluster come back.
 *
 * etcd runs under `setpriv --pdeathsig KILL`, so it dies with the test process even when
 * the test process itself is killed (a tap timeout) and teardown never runs.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { get as httpsGet } from 'node:https';
import { get as httpGet, type IncomingMessage } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Teardown } from './env.js';
import { issueCert, makeCA, type CertAuthority, type IssueOptions } from '../../src/lab/certs.js';
import { loadTls, type StoreTlsFiles, type StoreTlsMaterial } from '../../src/store/tls.js';

export const ETCD_BIN = process.env.SLUICE_ETCD_BIN ?? '/usr/bin/etcd';
export const HAVE_ETCD = existsSync(ETCD_BIN);

export interface EtcdServer {
  /** "127.0.0.1:<client port>", what a store spec or etcdctl --endpoints takes. */
  readonly endpoint: string;
  readonly clientPort: number;
  readonly peerPort: number;
  readonly dataDir: string;
  /** PID of the running etcd (undefined while stopped). */
  readonly pid: number | undefined;
  readonly running: boolean;
  /** Kills etcd (SIGKILL: a crash, by default) and waits until it has exited. */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** Starts etcd again on the same ports and data directory and waits until it is healthy. */
  start(): Promise<void>;
  /** The last lines of etcd's log, for failure messages. */
  logTail(lines?: number): string;
  /** Whether it serves TLS with client-certificate authentication. */
  readonly tlsOn: boolean;
  /** The store spec of `prefix` (etcds:// or etcd://) on `host` (default 127.0.0.1). */
  spec(prefix?: string, host?: string): string;
  /** The client's CA, certificate and key (paths; empty without TLS): config keys storeCA, storeCert, storeKey. */
  readonly tls: StoreTlsFiles;
  /** Their contents, for `new EtcdStore({ tls })` (undefined without TLS). */
  readonly tlsMaterial: StoreTlsMaterial | undefined;
  /** The CA that signed etcd's and the client's certificates (to issue more; undefined without TLS). */
  readonly ca: CertAuthority | undefined;
  /** Where the certificates are. */
  readonly pkiDir: string;
  /** etcdctl's connection flags (endpoint and TLS) for `host` (default 127.0.0.1). */
  etcdctlArgs(host?: string): string[];
}

export interface EtcdOptions {
  /** How long to wait for etcd to report healthy (default 20 s). */
  startTimeoutMs?: number;
  /** Run etcd inside this network namespace (a name under /run/netns) instead of the test's. */
  netns?: string;
  /** Address the client port listens on (default 127.0.0.1; e.g. 0.0.0.0 inside a namespace). */
  listenHost?: string;
  /** TLS with client-certificate authentication (default true). */
  tls?: boolean;
  /** More names of the server certificate (addresses clients connect to, besides 127.0.0.1 and the listen address). */
  sans?: string[];
  /** Overrides of the server certificate (an expired one, other names). */
  serverCert?: Partial<IssueOptions>;
  /**
   * Certificates made elsewhere (scripts/provision/pki): etcd serves `cert`/`key`, trusts `ca`,
   * and the helper's own client (health check, `tls`) uses `client`.
   */
  pki?: { ca: string; cert: string; key: string; client: { cert: string; key: string } };
}

/** A TCP port nobody listens on right now (there is a small race until etcd binds it). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => (port ? resolve(port) : reject(new Error('no port from the kernel'))));
    });
  });
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * GET http(s)://127.0.0.1:port/health (with the client certificate) → true when etcd
 * answers {"health":"true"}. `verifyServer` false: a server certificate made bad on purpose
 * (expired, misnamed) is not checked, etcd's being up is.
 */
function healthy(port: number, tls: StoreTlsMaterial | undefined, verifyServer: boolean): Promise<boolean> {
  return new Promise((resolve) => {
    const o = { host: '127.0.0.1', port, path: '/health', agent: false, timeout: 1000 };
    const onRes = (res: IncomingMessage) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => {
        try {
          resolve(res.statusCode === 200 && (JSON.parse(body) as { health?: string }).health === 'true');
        } catch {
          resolve(false);
        }
      });
      res.on('error', () => resolve(false));
    };
    const req = tls ? httpsGet({ ...o, ca: tls.ca, cert: tls.cert, key: tls.key, rejectUnauthorized: verifyServer }, onRes) : httpGet(o, onRes);
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
  });
}

/** healthy() run inside network namespace `ns` (a short node process, since the test's own sockets live outside it). */
function healthyIn(ns: string, port: number, tls: StoreTlsFiles): Promise<boolean> {
  const code = tls.ca
    ? `const fs = await import('node:fs'); const r = (f) => fs.readFileSync(f);
       (await import('node:https')).get({ host: '127.0.0.1', port: ${port}, path: '/health', timeout: 1000,
         ca: r(${JSON.stringify(tls.ca)}), cert: r(${JSON.stringify(tls.cert)}), key: r(${JSON.stringify(tls.key)}) }, (res) => {
         let b = ''; res.on('data', (d) => (b += d)); res.on('end', () => process.exit(JSON.parse(b).health === 'true' ? 0 : 1));
       }).on('error', () => process.exit(1)).on('timeout', () => process.exit(1));`
    : `fetch('http://127.0.0.1:${port}/health', { signal: AbortSignal.timeout(1000) }).then((r) => r.json())`
      + ".then((j) => process.exit(j.health === 'true' ? 0 : 1), () => process.exit(1))";
  return new Promise((resolve) => {
    const c = spawn('nsenter', [`--net=/run/netns/${ns}`, process.execPath, '--input-type=module', '-e', code], { stdio: 'ignore' });
    c.on('exit', (status) => resolve(status === 0));
    c.on('error', () => resolve(false));
  });
}

/** Starts etcd for the test `t`; it is killed and its data removed at teardown. */
export async function startEtcd(t: Teardown, o: EtcdOptions = {}): Promise<EtcdServer> {
  if (!HAVE_ETCD) throw new Error(`${ETCD_BIN} not found (install Debian's etcd-server)`);
  const dir = mkdtempSync(join(tmpdir(), 'sluice-etcd-'));
  const dataDir = join(dir, 'data');
  const logPath = join(dir, 'etcd.log');
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let clientPort = 0;
  let peerPort = 0;
  let serverFiles: { cert: string; key: string } | undefined;
  const startTimeoutMs = o.startTimeoutMs ?? 20_000;
  const tlsOn = o.tls ?? true;
  const scheme = tlsOn ? 'https' : 'http';
  const pkiDir = join(dir, 'pki');
  let ca: CertAuthority | undefined;
  let tls: StoreTlsFiles = {};
  let tlsMaterial: StoreTlsMaterial | undefined;
  if (tlsOn && o.pki) {
    tls = { ca: o.pki.ca, cert: o.pki.client.cert, key: o.pki.client.key };
    tlsMaterial = loadTls(tls);
    serverFiles = { cert: o.pki.cert, key: o.pki.key };
  } else if (tlsOn) {
    try {
      ca = makeCA(pkiDir, 'sluice test etcd CA');
      const host = o.listenHost ?? '127.0.0.1';
      const sans = [...new Set(['127.0.0.1', 'localhost', ...(host === '0.0.0.0' ? [] : [host]), ...(o.sans ?? [])])];
      const server = issueCert(ca, pkiDir, 'server', { cn: 'etcd', usage: 'server', sans, ...o.serverCert });
      const client = issueCert(ca, pkiDir, 'client', { cn: 'sluice-test-client', usage: 'client' });
      tls = { ca: ca.cert, cert: client.cert, key: client.key };
      tlsMaterial = loadTls(tls);
      serverFiles = server;
    } catch (e) {
      rmSync(dir, { recursive: true, force: true });
      throw e;
    }
  }

  // Last resort if the test process exits without running teardown (an uncaught exception
  // ends a tap file without teardowns): kill etcd and remove its files, best effort.
  const onExit = () => {
    if (child?.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
    try {
      rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
    } catch {
      /* etcd may still be dying */
    }
  };
  process.on('exit', onExit);

  const logTail = (lines = 30): string => {
    try {
      return readFileSync(logPath, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  };

  const launch = async (): Promise<void> => {
    const name = 'sluice-test';
    const peer = `http://127.0.0.1:${peerPort}`;
    const host = o.listenHost ?? '127.0.0.1';
    const client = `${scheme}://${host}:${clientPort}`;
    const args = [
      '--pdeathsig', 'KILL', ...(o.netns ? ['nsenter', `--net=/run/netns/${o.netns}`] : []), ETCD_BIN,
      '--name', name, '--data-dir', dataDir,
      '--listen-client-urls', host === '127.0.0.1' || host === '0.0.0.0' ? client : `${client},${scheme}://127.0.0.1:${clientPort}`,
      '--advertise-client-urls', host === '0.0.0.0' ? `${scheme}://127.0.0.1:${clientPort}` : client,
      ...(serverFiles && tls.ca ? ['--cert-file', serverFiles.cert, '--key-file', serverFiles.key, '--trusted-ca-file', tls.ca, '--client-cert-auth'] : []),
      '--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer,
      '--initial-cluster', `${name}=${peer}`, '--initial-cluster-state', 'new',
      '--initial-cluster-token', `sluice-test-${process.pid}`,
      '--logger', 'zap', '--log-outputs', 'stderr', '--log-level', 'warn',
    ];
    const log = openSync(logPath, 'a');
    let proc: ChildProcess;
    try {
      proc = spawn('/usr/bin/setpriv', args, { stdio: ['ignore', log, log] });
    } finally {
      closeSync(log);
    }
    child = proc;
    exited = new Promise<void>((resolve) => {
      if (proc.exitCode !== null || proc.signalCode !== null) resolve();
      else proc.once('exit', () => resolve());
    });
    proc.once('error', () => undefined); // reported through 'exit' / the health wait
    const deadline = Date.now() + startTimeoutMs;
    for (;;) {
      if (proc.exitCode !== null || proc.signalCode !== null) {
        throw new Error(`etcd exited (${proc.exitCode ?? proc.signalCode}) while starting:\n${logTail()}`);
      }
      if (await (o.netns ? healthyIn(o.netns, clientPort, tls) : healthy(clientPort, tlsMaterial, !o.serverCert))) return;
      if (Date.now() > deadline) {
        proc.kill('SIGKILL');
        await exited;
        throw new Error(`etcd on ${client} not healthy after ${startTimeoutMs} ms:\n${logTail()}`);
      }
      await sleep(100);
    }
  };

  const stop = async (signal: NodeJS.Signals = 'SIGKILL'): Promise<void> => {
    const proc = child;
    if (!proc) return;
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill(signal);
      const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    child = undefined;
  };

  t.teardown(async () => {
    await stop('SIGKILL');
    process.removeListener('exit', onExit);
    rmSync(dir, { recursive: true, force: true });
  });

  // Another process can grab a port between freePort() and etcd's bind: retry with new ones.
  for (let attempt = 1; ; attempt++) {
    clientPort = await freePort();
    peerPort = await freePort();
    if (peerPort === clientPort) continue;
    try {
      await launch();
      break;
    } catch (e) {
      await stop('SIGKILL');
      rmSync(dataDir, { recursive: true, force: true });
      if (attempt >= 3 || !/address already in use/.test((e as Error).message)) throw e;
    }
  }

  return {
    get endpoint() {
      return `127.0.0.1:${clientPort}`;
    },
    clientPort,
    peerPort,
    dataDir,
    get pid() {
      return child?.pid;
    },
    get running() {
      return child !== undefined && child.exitCode === null && child.signalCode === null;
    },
    stop,
    async start() {
      if (child && child.exitCode === null && child.signalCode === null) return;
      await launch();
    },
    logTail,
    tlsOn,
    spec: (prefix = '', host = '127.0.0.1') => `${tlsOn ? 'etcds' : 'etcd'}://${host}:${clientPort}${prefix}`,
    tls,
    tlsMaterial,
    ca,
    pkiDir,
    etcdctlArgs: (host = '127.0.0.1') => [
      '--endpoints', `${scheme}://${host}:${clientPort}`,
      ...(tlsOn ? ['--cacert', tls.ca!, '--cert', tls.cert!, '--key', tls.key!] : []),
    ],
  };
}

/**
 * etcd for a whole test file, started in a subtest of `t` (a throw at a file's top level
 * would make tap skip the teardowns). The getter throws when it did not start.
 */
export function etcdForFile(t: Teardown & { test(name: string, fn: () => Promise<void>): unknown }, o: EtcdOptions = {}): () => EtcdServer {
  let server: EtcdServer | undefined;
  t.test('start etcd', async () => {
    server = await startEtcd(t, o);
  });
  return () => {
    if (!server) throw new Error('etcd did not start');
    return server;
  };
}
