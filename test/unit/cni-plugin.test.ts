/**
 * The CNI plugin run exactly as a container runtime runs it: the compiled executable
 * (bin/sluice-cni.js → dist/), CNI_* in the environment, the network configuration on
 * stdin, the result or error object read from stdout. It talks to a fake sluice agent
 * serving the agent API on a temporary unix socket. No root needed.
 *
 * Build first: npx tsc -p tsconfig.json
 */
import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { dirname, join } from 'node:path';
import { REPO, tempDir } from '../helpers/env.js';

const PLUGIN = join(REPO, 'bin', 'sluice-cni.js');
const VERSIONS = ['0.4.0', '1.0.0', '1.1.0'] as const;
const NODE_DIR = dirname(process.execPath);

if (!existsSync(join(REPO, 'dist', 'cni', 'plugin.js'))) {
  t.fail('dist/cni/plugin.js is missing: build with `npx tsc -p tsconfig.json` first');
}

// ---------------------------------------------------------------------------------------
// The fake agent

interface Endpoint {
  id: number; name: string; ip: string; mac: string; ifname: string; netns: string; hostIfname: string; mtu: number;
}
interface Recorded { method: string; url: string; body: Record<string, unknown> | undefined }
type Reply = { status: number; body?: unknown; raw?: string } | 'hang';

class FakeAgent {
  readonly requests: Recorded[] = [];
  readonly endpoints = new Map<string, Endpoint>();
  ready = true;
  reason: string | undefined;
  /** Answers instead of the normal behaviour when it returns something. */
  override: ((r: Recorded) => Reply | undefined) | undefined;
  private next = 5;

  constructor(readonly socket: string, private readonly server: http.Server) {}

  static async start(t: Test, dir: string): Promise<FakeAgent> {
    const socket = join(dir, 'agent.sock');
    const server = http.createServer();
    const agent = new FakeAgent(socket, server);
    server.on('request', (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        const rec: Recorded = { method: req.method ?? '', url: req.url ?? '', body: text ? JSON.parse(text) as Record<string, unknown> : undefined };
        agent.requests.push(rec);
        const reply = agent.override?.(rec) ?? agent.handle(rec);
        if (reply === 'hang') return;
        res.writeHead(reply.status, { 'content-type': 'application/json' });
        res.end(reply.raw ?? JSON.stringify(reply.body));
      });
    });
    await new Promise<void>((resolve) => server.listen(socket, resolve));
    t.teardown(() => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }));
    return agent;
  }

  last(): Recorded {
    return this.requests[this.requests.length - 1]!;
  }

  private handle(r: Recorded): Exclude<Reply, 'hang'> {
    const b = r.body ?? {};
    const key = `${String(b.containerId)}/${String(b.ifname)}`;
    const err = (status: number, code: string, message: string) => ({ status, body: { error: { code, message } } });
    switch (`${r.method} ${r.url}`) {
      case 'POST /v1/cni/add': {
        let ep = this.endpoints.get(key);
        if (!ep) {
          const n = this.next++;
          const cid = String(b.containerId);
          ep = {
            id: n, name: b.podNamespace && b.podName ? `${String(b.podNamespace)}/${String(b.podName)}` : `default/${cid.slice(0, 12)}`,
            ip: `10.244.0.${n}`, mac: `0A:58:0A:F4:00:${n.toString(16).padStart(2, '0')}`, ifname: String(b.ifname), netns: String(b.netns),
            hostIfname: `sl${n.toString(16).padStart(11, '0')}`, mtu: 1450,
          };
          this.endpoints.set(key, ep);
        }
        return { status: 200, body: { endpoint: ep, gateway: '169.254.1.1', podCIDR: '10.244.0.0/24' } };
      }
      case 'POST /v1/cni/del':
        return { status: 200, body: { deleted: this.endpoints.delete(key) } };
      case 'POST /v1/cni/check': {
        const ep = this.endpoints.get(key);
        if (!ep) return { status: 200, body: { ok: false, problems: [`no endpoint for container ${String(b.containerId)} interface ${String(b.ifname)}`] } };
        return { status: 200, body: { ok: true, endpoint: ep } };
      }
      case 'GET /v1/status':
        return { status: 200, body: this.ready ? { ready: true } : { ready: false, reason: this.reason } };
      case 'POST /v1/cni/gc': {
        const valid = new Set((b.validAttachments as { containerId: string; ifname: string }[]).map((a) => `${a.containerId}/${a.ifname}`));
        const removed = [...this.endpoints.keys()].filter((k) => !valid.has(k));
        for (const k of removed) this.endpoints.delete(k);
        return { status: 200, body: { removed } };
      }
      default:
        return err(404, 'not_found', `no route ${r.method} ${r.url}`);
    }
  }
}

// ---------------------------------------------------------------------------------------
// Running the plugin like a runtime

interface Run { status: number | null; stdout: string; stderr: string; json: Record<string, unknown> | undefined }

/**
 * Runs the executable with exactly `env` (+ PATH for `#!/usr/bin/env node`) and `stdin`.
 * Through `env -i`: tap adds its loaders to NODE_OPTIONS of every child it can see, and a
 * runtime runs the plugin with no such thing.
 */
function runPlugin(env: Record<string, string | undefined>, stdin: string, bin = PLUGIN, pathDirs: string[] = [NODE_DIR, '/usr/bin', '/bin']): Promise<Run> {
  const exact: Record<string, string> = { PATH: pathDirs.join(':') };
  for (const [k, v] of Object.entries(env)) if (v !== undefined) exact[k] = v;
  return new Promise((resolve, reject) => {
    const child = spawn('/usr/bin/env', ['-i', ...Object.entries(exact).map(([k, v]) => `${k}=${v}`), bin], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => { stdout += c.toString(); });
    child.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
    child.on('error', reject);
    child.on('close', (status) => {
      let json: Record<string, unknown> | undefined;
      if (stdout.trim()) {
        try {
          json = JSON.parse(stdout) as Record<string, unknown>;
        } catch {
          json = undefined;
        }
      }
      resolve({ status, stdout, stderr, json });
    });
    child.stdin.on('error', () => { /* the plugin may exit before reading everything */ });
    child.stdin.end(stdin);
  });
}

/** Every run: stdout is nothing or exactly one JSON document; never a stack trace anywhere. */
function clean(t: Test, r: Run): void {
  if (r.stdout !== '') {
    t.ok(r.json, `stdout is one JSON document: ${r.stdout}`);
    t.equal(r.stdout.trim().split('\n').length, 1, 'stdout is one line');
  }
  t.notMatch(r.stderr, /\n\s+at .*\(.*:\d+:\d+\)/, 'no stack trace on stderr');
  t.notMatch(r.stdout, /\bat .*:\d+:\d+/, 'no stack trace on stdout');
}

function ok(t: Test, r: Run, what: string): void {
  clean(t, r);
  t.equal(r.status, 0, `${what}: exit 0 (stdout: ${r.stdout} stderr: ${r.stderr})`);
}

/** Asserts a CNI error object with `code` on stdout and a non-zero exit. */
function cniError(t: Test, r: Run, version: string, code: number, msg: RegExp, what: string): Record<string, unknown> {
  clean(t, r);
  t.not(r.status, 0, `${what}: non-zero exit`);
  const j = r.json ?? {};
  t.equal(j.code, code, `${what}: code ${code} (got ${r.stdout})`);
  t.equal(j.cniVersion, version, `${what}: cniVersion ${version}`);
  t.match(j.msg, msg, `${what}: msg`);
  t.same(Object.keys(j).filter((k) => !['cniVersion', 'code', 'msg', 'details'].includes(k)), [], `${what}: only the error object's fields`);
  if ('details' in j) t.type(j.details, 'string');
  return j;
}

const cfg = (socket: string, version: string, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ cniVersion: version, name: 'sluice', type: 'sluice', socket, ...extra });

const envFor = (command: string, cid = 'c0ffee0123456789abcdef', extra: Record<string, string | undefined> = {}) => ({
  CNI_COMMAND: command, CNI_CONTAINERID: cid, CNI_NETNS: `/var/run/netns/cni-${cid.slice(0, 8)}`, CNI_IFNAME: 'eth0',
  CNI_PATH: '/opt/cni/bin', ...extra,
});

// ---------------------------------------------------------------------------------------

t.test('VERSION', async (t) => {
  const noInput = await runPlugin({ CNI_COMMAND: 'VERSION' }, '');
  ok(t, noInput, 'VERSION without input');
  t.same(noInput.json, { cniVersion: '1.1.0', supportedVersions: ['0.4.0', '1.0.0', '1.1.0'] });
  for (const v of VERSIONS) {
    const r = await runPlugin({ CNI_COMMAND: 'VERSION' }, JSON.stringify({ cniVersion: v }));
    ok(t, r, `VERSION asked in ${v}`);
    t.same(r.json, { cniVersion: v, supportedVersions: ['0.4.0', '1.0.0', '1.1.0'] }, `answers in ${v}`);
  }
  const garbage = await runPlugin({ CNI_COMMAND: 'VERSION' }, 'garbage');
  ok(t, garbage, 'VERSION ignores garbage input');
  t.same(garbage.json, { cniVersion: '1.1.0', supportedVersions: ['0.4.0', '1.0.0', '1.1.0'] });
});

for (const version of VERSIONS) {
  t.test(`ADD, CHECK, DEL in ${version}`, async (t) => {
    const agent = await FakeAgent.start(t, tempDir(t, 'cnip'));
    const cid = `a${version.replace(/\./g, '')}0123456789abcdef`;
    const env = envFor('ADD', cid, { CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;K8S_POD_NAME=web-0;K8S_POD_INFRA_CONTAINER_ID=x' });
    const netns = env.CNI_NETNS;

    const add = await runPlugin(env, cfg(agent.socket, version));
    ok(t, add, 'ADD');
    t.same(agent.last(), {
      method: 'POST', url: '/v1/cni/add',
      body: { containerId: cid, ifname: 'eth0', netns, podNamespace: 'shop', podName: 'web-0' },
    }, 'the agent got the add request');
    const ep = agent.endpoints.get(`${cid}/eth0`)!;
    const r = add.json as Record<string, any>;
    t.same(Object.keys(r).sort(), ['cniVersion', 'dns', 'interfaces', 'ips', 'routes'], 'result keys');
    t.equal(r.cniVersion, version, 'the version the config asked for');
    t.equal(r.interfaces.length, 1);
    t.equal(r.interfaces[0].name, 'eth0');
    t.equal(r.interfaces[0].mac, ep.mac.toLowerCase());
    t.equal(r.interfaces[0].sandbox, netns);
    if (version === '1.1.0') t.equal(r.interfaces[0].mtu, 1450, '1.1.0: interface mtu');
    else t.notOk('mtu' in r.interfaces[0], `${version}: no interface mtu`);
    t.same(Object.keys(r.interfaces[0]).sort(), version === '1.1.0' ? ['mac', 'mtu', 'name', 'sandbox'] : ['mac', 'name', 'sandbox']);
    t.equal(r.ips.length, 1);
    t.equal(r.ips[0].address, `${ep.ip}/32`);
    t.equal(r.ips[0].gateway, '169.254.1.1');
    t.equal(r.ips[0].interface, 0);
    if (version === '0.4.0') t.equal(r.ips[0].version, '4', '0.4.0: ip version');
    else t.notOk('version' in r.ips[0], `${version}: no ip version`);
    t.same(r.routes, [{ dst: '0.0.0.0/0', gw: '169.254.1.1' }]);
    t.same(r.dns, {});

    const again = await runPlugin(env, cfg(agent.socket, version));
    ok(t, again, 'ADD again');
    t.same(again.json, add.json, 'ADD is idempotent per (container, ifname)');

    const check = await runPlugin({ ...env, CNI_COMMAND: 'CHECK' }, cfg(agent.socket, version, { prevResult: add.json }));
    ok(t, check, 'CHECK with prevResult');
    t.equal(check.stdout, '', 'CHECK prints nothing');
    t.same(agent.last(), { method: 'POST', url: '/v1/cni/check', body: { containerId: cid, ifname: 'eth0', netns } });

    const del = await runPlugin({ ...env, CNI_COMMAND: 'DEL' }, cfg(agent.socket, version, { prevResult: add.json }));
    ok(t, del, 'DEL');
    t.equal(del.stdout, '', 'DEL prints nothing');
    t.same(agent.last(), { method: 'POST', url: '/v1/cni/del', body: { containerId: cid, ifname: 'eth0', netns } });
    t.notOk(agent.endpoints.has(`${cid}/eth0`), 'the endpoint is gone');

    const del2 = await runPlugin({ ...env, CNI_COMMAND: 'DEL' }, cfg(agent.socket, version));
    ok(t, del2, 'DEL again');
    t.equal(del2.stdout, '');

    const del3 = await runPlugin({ ...env, CNI_COMMAND: 'DEL', CNI_NETNS: undefined }, cfg(agent.socket, version));
    ok(t, del3, 'DEL without CNI_NETNS (the netns is gone)');
    t.same(agent.last().body, { containerId: cid, ifname: 'eth0' }, 'no netns in the request');

    const checkGone = await runPlugin({ ...env, CNI_COMMAND: 'CHECK' }, cfg(agent.socket, version, { prevResult: add.json }));
    const e = cniError(t, checkGone, version, 1000, new RegExp(`interface eth0 of container ${cid} is not as expected`), 'CHECK after DEL');
    t.match(e.details, /no endpoint for container/, 'the agent\'s problems are in details');
  });
}

t.test('CHECK compares prevResult with the agent', async (t) => {
  const agent = await FakeAgent.start(t, tempDir(t, 'cnip'));
  const env = envFor('ADD');
  const add = await runPlugin(env, cfg(agent.socket, '1.0.0'));
  ok(t, add, 'ADD');
  const prev = add.json as Record<string, any>;

  const wrongIp = structuredClone(prev);
  wrongIp.ips[0].address = '10.244.0.99/32';
  let e = cniError(t, await runPlugin({ ...env, CNI_COMMAND: 'CHECK' }, cfg(agent.socket, '1.0.0', { prevResult: wrongIp })), '1.0.0', 1000, /is not as expected/, 'wrong IP');
  t.match(e.details, /prevResult has address 10\.244\.0\.99\/32, the agent has 10\.244\.0\.\d+\/32/);

  const wrongMac = structuredClone(prev);
  wrongMac.interfaces[0].mac = '02:00:00:00:00:01';
  e = cniError(t, await runPlugin({ ...env, CNI_COMMAND: 'CHECK' }, cfg(agent.socket, '0.4.0', { prevResult: wrongMac })), '0.4.0', 1000, /is not as expected/, 'wrong MAC');
  t.match(e.details, /prevResult has MAC 02:00:00:00:00:01/);

  e = cniError(t, await runPlugin({ ...env, CNI_COMMAND: 'CHECK', CNI_IFNAME: 'net1' }, cfg(agent.socket, '1.0.0', { prevResult: prev })), '1.0.0', 1000, /is not as expected/, 'other interface');
  t.match(e.details, /prevResult lists no interface net1/);

  const noPrev = await runPlugin({ ...env, CNI_COMMAND: 'CHECK' }, cfg(agent.socket, '1.0.0'));
  ok(t, noPrev, 'CHECK without prevResult trusts the agent');

  cniError(t, await runPlugin({ ...env, CNI_COMMAND: 'CHECK' }, cfg(agent.socket, '1.0.0', { prevResult: 'junk' })), '1.0.0', 7, /prevResult is not a CNI result/, 'junk prevResult');

  agent.override = (r) => (r.url === '/v1/cni/check' ? { status: 200, body: { ok: false, problems: ['veth sl000 is down', 'no route to 10.244.0.5'] } } : undefined);
  e = cniError(t, await runPlugin({ ...env, CNI_COMMAND: 'CHECK' }, cfg(agent.socket, '1.1.0', { prevResult: prev })), '1.1.0', 1000, /is not as expected/, 'agent problems');
  t.match(e.details, 'veth sl000 is down; no route to 10.244.0.5');
});

t.test('STATUS (1.1.0)', async (t) => {
  const agent = await FakeAgent.start(t, tempDir(t, 'cnip'));
  const r = await runPlugin({ CNI_COMMAND: 'STATUS', CNI_PATH: '/opt/cni/bin' }, cfg(agent.socket, '1.1.0'));
  ok(t, r, 'STATUS ready');
  t.equal(r.stdout, '');
  t.same(agent.last(), { method: 'GET', url: '/v1/status', body: undefined });

  agent.ready = false;
  agent.reason = 'datapath not loaded';
  cniError(t, await runPlugin({ CNI_COMMAND: 'STATUS' }, cfg(agent.socket, '1.1.0')), '1.1.0', 50, /^the sluice agent is not ready: datapath not loaded$/, 'STATUS not ready');

  agent.override = () => ({ status: 500, body: { error: { code: 'internal', message: 'store unreachable' } } });
  cniError(t, await runPlugin({ CNI_COMMAND: 'STATUS' }, cfg(agent.socket, '1.1.0')), '1.1.0', 50, /not available: store unreachable/, 'STATUS agent error');

  const down = join(tempDir(t, 'cnip'), 'agent.sock');
  const e = cniError(t, await runPlugin({ CNI_COMMAND: 'STATUS' }, cfg(down, '1.1.0')), '1.1.0', 50, /cannot reach the sluice agent at .*agent\.sock: is it running\?/, 'STATUS agent down');
  t.match(e.details, /ENOENT/);

  for (const v of ['0.4.0', '1.0.0']) {
    cniError(t, await runPlugin({ CNI_COMMAND: 'STATUS' }, cfg(agent.socket, v)), v, 1, /STATUS needs cniVersion 1\.1\.0/, `STATUS in ${v}`);
  }
});

t.test('GC (1.1.0)', async (t) => {
  const agent = await FakeAgent.start(t, tempDir(t, 'cnip'));
  for (const cid of ['keep1', 'keep2', 'stale1']) ok(t, await runPlugin(envFor('ADD', cid), cfg(agent.socket, '1.1.0')), `ADD ${cid}`);
  const valid = [{ containerID: 'keep1', ifname: 'eth0' }, { containerID: 'keep2', ifname: 'eth0' }];
  const r = await runPlugin({ CNI_COMMAND: 'GC', CNI_PATH: '/opt/cni/bin' }, cfg(agent.socket, '1.1.0', { 'cni.dev/valid-attachments': valid }));
  ok(t, r, 'GC');
  t.equal(r.stdout, '', 'GC prints nothing');
  t.same(agent.last(), {
    method: 'POST', url: '/v1/cni/gc',
    body: { validAttachments: [{ containerId: 'keep1', ifname: 'eth0' }, { containerId: 'keep2', ifname: 'eth0' }] },
  }, 'containerID → containerId');
  t.same([...agent.endpoints.keys()].sort(), ['keep1/eth0', 'keep2/eth0'], 'the stale one is gone');

  const n = agent.requests.length;
  cniError(t, await runPlugin({ CNI_COMMAND: 'GC' }, cfg(agent.socket, '1.1.0')), '1.1.0', 7, /GC needs cni\.dev\/valid-attachments/, 'GC without the list');
  cniError(t, await runPlugin({ CNI_COMMAND: 'GC' }, cfg(agent.socket, '1.1.0', { 'cni.dev/valid-attachments': [{ id: 1 }] })), '1.1.0', 7, /must be/, 'GC with a malformed list');
  for (const v of ['0.4.0', '1.0.0']) {
    cniError(t, await runPlugin({ CNI_COMMAND: 'GC' }, cfg(agent.socket, v, { 'cni.dev/valid-attachments': valid })), v, 1, /GC needs cniVersion 1\.1\.0/, `GC in ${v}`);
  }
  t.equal(agent.requests.length, n, 'refused GCs never reached the agent');

  const down = join(tempDir(t, 'cnip'), 'agent.sock');
  cniError(t, await runPlugin({ CNI_COMMAND: 'GC' }, cfg(down, '1.1.0', { 'cni.dev/valid-attachments': [] })), '1.1.0', 11, /cannot reach the sluice agent/, 'GC agent down');
});

t.test('CNI_ARGS and labels reach the agent', async (t) => {
  const agent = await FakeAgent.start(t, tempDir(t, 'cnip'));
  ok(t, await runPlugin(envFor('ADD', 'noargs'), cfg(agent.socket, '1.0.0')), 'no CNI_ARGS');
  t.same(Object.keys(agent.last().body!).sort(), ['containerId', 'ifname', 'netns'], 'no pod fields without CNI_ARGS');

  ok(t, await runPlugin(envFor('ADD', 'onlyns', { CNI_ARGS: 'K8S_POD_NAMESPACE=kube-system;FOO=bar' }), cfg(agent.socket, '1.0.0')), 'namespace only, unknown key');
  t.same(agent.last().body, { containerId: 'onlyns', ifname: 'eth0', netns: '/var/run/netns/cni-onlyns', podNamespace: 'kube-system' });

  ok(t, await runPlugin(envFor('ADD', 'labelled', { CNI_ARGS: 'K8S_POD_NAMESPACE=shop;K8S_POD_NAME=cart-1' }),
    cfg(agent.socket, '1.0.0', { args: { cni: { labels: [{ key: 'app', value: 'cart' }, { key: 'tier', value: 'back' }] } } })), 'labels');
  t.same(agent.last().body, {
    containerId: 'labelled', ifname: 'eth0', netns: '/var/run/netns/cni-labelled', podNamespace: 'shop', podName: 'cart-1', labels: { app: 'cart', tier: 'back' },
  });
  t.equal(agent.endpoints.get('labelled/eth0')!.name, 'shop/cart-1');

  const n = agent.requests.length;
  cniError(t, await runPlugin(envFor('ADD', 'badargs', { CNI_ARGS: 'K8S_POD_NAMESPACE=shop;K8S_POD_NAME' }), cfg(agent.socket, '1.0.0')), '1.0.0', 4,
    /CNI_ARGS: 'K8S_POD_NAME' is not of the form KEY=VALUE/, 'malformed CNI_ARGS');
  t.equal(agent.requests.length, n, 'nothing sent');
  ok(t, await runPlugin({ ...envFor('DEL', 'badargs'), CNI_ARGS: 'garbage' }, cfg(agent.socket, '1.0.0')), 'DEL does not need CNI_ARGS');

  ok(t, await runPlugin(envFor('ADD', 'withdns'), cfg(agent.socket, '1.0.0', { dns: { nameservers: ['10.96.0.10'], search: ['svc.cluster.local'] } })), 'dns');
});

t.test('bad input: the right error code, nothing sent to the agent', async (t) => {
  const agent = await FakeAgent.start(t, tempDir(t, 'cnip'));
  const good = cfg(agent.socket, '1.0.0');
  const cases: [string, Record<string, string | undefined>, string, number, RegExp, string?][] = [
    ['garbage stdin', envFor('ADD'), 'this is not json {', 6, /not valid JSON/],
    ['binary stdin', envFor('ADD'), '\u0000\u0001\u0002\u00ff', 6, /not valid JSON/],
    ['empty stdin', envFor('ADD'), '', 6, /no network configuration on stdin/],
    ['a JSON array', envFor('ADD'), '[1,2,3]', 6, /not a JSON object/],
    ['garbage on DEL', envFor('DEL'), '}{', 6, /not valid JSON/],
    ['garbage on CHECK', envFor('CHECK'), 'nope', 6, /not valid JSON/],
    ['no CNI_COMMAND', { CNI_CONTAINERID: 'abc', CNI_NETNS: '/x', CNI_IFNAME: 'eth0' }, good, 4, /CNI_COMMAND is missing/, '1.0.0'],
    ['unknown command', envFor('FROB'), good, 4, /unknown CNI_COMMAND 'FROB'/, '1.0.0'],
    ['ADD without CNI_CONTAINERID', envFor('ADD', 'x', { CNI_CONTAINERID: undefined }), good, 4, /CNI_CONTAINERID missing for ADD/, '1.0.0'],
    ['ADD without CNI_NETNS', envFor('ADD', 'x', { CNI_NETNS: undefined }), good, 4, /CNI_NETNS missing for ADD/, '1.0.0'],
    ['ADD without CNI_IFNAME', envFor('ADD', 'x', { CNI_IFNAME: undefined }), good, 4, /CNI_IFNAME missing for ADD/, '1.0.0'],
    ['ADD without all three', { CNI_COMMAND: 'ADD' }, good, 4, /CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME missing/, '1.0.0'],
    ['CHECK without CNI_NETNS', envFor('CHECK', 'x', { CNI_NETNS: '' }), good, 4, /CNI_NETNS missing for CHECK/, '1.0.0'],
    ['DEL without CNI_IFNAME', envFor('DEL', 'x', { CNI_IFNAME: undefined }), good, 4, /CNI_IFNAME missing for DEL/, '1.0.0'],
    ['bad container id', envFor('ADD', '../etc'), good, 4, /CNI_CONTAINERID '\.\.\/etc' is not a valid container id/, '1.0.0'],
    ['bad ifname', envFor('ADD', 'x', { CNI_IFNAME: 'eth0:1' }), good, 4, /CNI_IFNAME 'eth0:1'/, '1.0.0'],
    ['cniVersion 0.3.1', envFor('ADD'), cfg(agent.socket, '0.3.1'), 1, /incompatible CNI versions/],
    ['cniVersion 2.0.0', envFor('DEL'), cfg(agent.socket, '2.0.0'), 1, /incompatible CNI versions/],
    ['no cniVersion', envFor('ADD'), JSON.stringify({ name: 'sluice', type: 'sluice', socket: agent.socket }), 1, /incompatible CNI versions/],
    ['no name', envFor('ADD'), JSON.stringify({ cniVersion: '1.0.0', type: 'sluice', socket: agent.socket }), 7, /has no name/, '1.0.0'],
    ['no type', envFor('ADD'), JSON.stringify({ cniVersion: '0.4.0', name: 'sluice', socket: agent.socket }), 7, /has no type/, '0.4.0'],
    ['relative socket', envFor('ADD'), cfg('agent.sock', '1.0.0'), 7, /absolute path/, '1.0.0'],
  ];
  for (const [what, env, stdin, code, msg, version] of cases) {
    const r = await runPlugin(env, stdin);
    const e = cniError(t, r, version ?? '1.1.0', code, msg, what);
    if (code === 1) t.match(e.details, /sluice supports 0\.4\.0, 1\.0\.0, 1\.1\.0/, `${what}: details name the supported versions`);
  }
  t.same(agent.requests, [], 'no bad input reached the agent');

  const about = await runPlugin({}, '');
  t.match(about.stderr, /sluice CNI plugin/, 'without CNI_COMMAND the plugin says what it is on stderr');
});

t.test('agent down', async (t) => {
  const dir = tempDir(t, 'cnip');
  const missing = join(dir, 'agent.sock');
  for (const v of VERSIONS) {
    for (const cmd of ['ADD', 'DEL', 'CHECK']) {
      const e = cniError(t, await runPlugin(envFor(cmd), cfg(missing, v)), v, 11,
        new RegExp(`^cannot reach the sluice agent at ${missing.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: is it running\\?$`), `${cmd} ${v} with no socket`);
      t.match(e.details, /ENOENT/, 'details: the socket is missing');
    }
  }
  // A socket path with nothing listening (a stale file): refused.
  const stale = join(dir, 'stale.sock');
  writeFileSync(stale, '');
  const e = cniError(t, await runPlugin(envFor('DEL'), cfg(stale, '1.0.0')), '1.0.0', 11, /cannot reach the sluice agent at .*stale\.sock: is it running\?/, 'DEL with a stale socket');
  t.match(e.details, /ECONNREFUSED/);
  // The default socket is used when the config names none (and is not there on a test machine).
  if (!existsSync('/run/sluice/agent.sock')) {
    cniError(t, await runPlugin(envFor('DEL'), JSON.stringify({ cniVersion: '1.0.0', name: 'sluice', type: 'sluice' })), '1.0.0', 11,
      /cannot reach the sluice agent at \/run\/sluice\/agent\.sock: is it running\?/, 'default socket');
  }
});

t.test('agent errors are propagated with their message', async (t) => {
  const agent = await FakeAgent.start(t, tempDir(t, 'cnip'));
  const fail = (status: number, code: string, message: string, details?: string) => () =>
    ({ status, body: { error: details ? { code, message, details } : { code, message } } });

  agent.override = fail(500, 'ip_exhausted', 'no free address in 10.244.0.0/24', '254 of 254 addresses in use');
  let e = cniError(t, await runPlugin(envFor('ADD'), cfg(agent.socket, '1.0.0')), '1.0.0', 999, /^no free address in 10\.244\.0\.0\/24$/, 'ADD agent failure');
  t.equal(e.details, 'sluice agent error ip_exhausted (HTTP 500): 254 of 254 addresses in use');

  agent.override = fail(503, 'not_ready', 'the datapath is still loading');
  e = cniError(t, await runPlugin(envFor('ADD'), cfg(agent.socket, '0.4.0')), '0.4.0', 11, /^the datapath is still loading$/, 'ADD agent not ready');
  t.match(e.details, /not_ready \(HTTP 503\)/);

  agent.override = fail(409, 'busy', 'another operation on this container is in progress');
  cniError(t, await runPlugin(envFor('DEL'), cfg(agent.socket, '1.0.0')), '1.0.0', 11, /another operation/, 'DEL agent busy');

  agent.override = fail(500, 'internal', 'cannot delete veth sl0000: device busy');
  cniError(t, await runPlugin(envFor('DEL'), cfg(agent.socket, '1.1.0')), '1.1.0', 999, /^cannot delete veth sl0000: device busy$/, 'DEL agent failure');

  agent.override = fail(404, 'unknown_container', 'no such container');
  ok(t, await runPlugin(envFor('DEL'), cfg(agent.socket, '1.0.0')), 'DEL of an unknown container succeeds');
  cniError(t, await runPlugin(envFor('CHECK'), cfg(agent.socket, '1.0.0')), '1.0.0', 3, /no such container/, 'CHECK unknown container');

  agent.override = fail(400, 'invalid_request', "netns '/var/run/netns/x' does not exist");
  cniError(t, await runPlugin(envFor('ADD'), cfg(agent.socket, '1.0.0')), '1.0.0', 4, /netns .* does not exist/, 'ADD invalid request');

  agent.override = () => ({ status: 502, raw: 'Bad Gateway' });
  e = cniError(t, await runPlugin(envFor('ADD'), cfg(agent.socket, '1.0.0')), '1.0.0', 999, /the sluice agent answered HTTP 502: Bad Gateway/, 'non-JSON error answer');
  t.match(e.details, /http_502/);

  agent.override = () => ({ status: 200, raw: '<html>hello</html>' });
  cniError(t, await runPlugin(envFor('ADD'), cfg(agent.socket, '1.0.0')), '1.0.0', 1001, /not JSON/, 'a 200 that is not JSON');

  agent.override = () => ({ status: 200, body: { endpoint: { id: 1 }, gateway: '169.254.1.1', podCIDR: '10.244.0.0/24' } });
  cniError(t, await runPlugin(envFor('ADD'), cfg(agent.socket, '1.0.0')), '1.0.0', 1001, /not what the plugin expects/, 'an incomplete add answer');

  agent.override = () => ({ status: 200, body: { endpoint: { id: 1, name: 'a/b', ip: '10.244.0.9', mac: '0a:58:0a:f4:00:09', ifname: 'net9', netns: '/x', hostIfname: 'sl1', mtu: 1500 }, gateway: '169.254.1.1', podCIDR: '10.244.0.0/24' } });
  cniError(t, await runPlugin(envFor('ADD'), cfg(agent.socket, '1.0.0')), '1.0.0', 1001, /it made interface net9, not eth0/, 'the agent made the wrong interface');

  agent.override = () => ({ status: 200, body: { removed: 'x' } });
  cniError(t, await runPlugin(envFor('DEL'), cfg(agent.socket, '1.0.0')), '1.0.0', 1001, /no "deleted" boolean/, 'a DEL answer without deleted');
});

t.test('agent timeout', async (t) => {
  const agent = await FakeAgent.start(t, tempDir(t, 'cnip'));
  agent.override = () => 'hang';
  const start = Date.now();
  const e = cniError(t, await runPlugin(envFor('ADD'), cfg(agent.socket, '1.0.0', { timeoutSeconds: 0.5 })), '1.0.0', 11,
    /the sluice agent at .*agent\.sock did not answer POST \/v1\/cni\/add within 0\.5s/, 'ADD times out');
  t.ok(Date.now() - start < 10_000, 'and does not hang');
  t.type(e.details, 'string');
  cniError(t, await runPlugin({ CNI_COMMAND: 'STATUS' }, cfg(agent.socket, '1.1.0', { timeoutSeconds: 0.5 })), '1.1.0', 50, /did not answer GET \/v1\/status/, 'STATUS times out');
});

t.test('installed in a CNI bin dir: symlinked, or copied', async (t) => {
  const agent = await FakeAgent.start(t, tempDir(t, 'cnip'));
  const dir = tempDir(t, 'cnibin');
  const binDir = join(dir, 'opt-cni-bin');
  mkdirSync(binDir);

  const link = join(binDir, 'sluice');
  symlinkSync(PLUGIN, link);
  const v = await runPlugin({ CNI_COMMAND: 'VERSION' }, '', link);
  ok(t, v, 'VERSION through a symlink');
  t.same(v.json, { cniVersion: '1.1.0', supportedVersions: ['0.4.0', '1.0.0', '1.1.0'] });
  const add = await runPlugin(envFor('ADD', 'viasymlink'), cfg(agent.socket, '1.0.0'), link);
  ok(t, add, 'ADD through a symlink');
  t.equal((add.json as Record<string, any>).ips[0].gateway, '169.254.1.1');

  // A symlink to a symlink (e.g. /opt/cni/bin/sluice → /usr/local/lib/sluice-cni → repo).
  const link2 = join(dir, 'sluice2');
  symlinkSync(link, link2);
  ok(t, await runPlugin({ CNI_COMMAND: 'VERSION' }, '', link2), 'VERSION through two symlinks');

  const copy = join(dir, 'copied', 'sluice');
  mkdirSync(dirname(copy));
  copyFileSync(PLUGIN, copy);
  // Without SLUICE_ROOT or `sluice` on PATH, a copy still looks in /usr/local/bin and /usr/bin
  // (runtimes often run plugins with a minimal PATH); where sluice is not there, it fails clearly.
  const lost = await runPlugin({ CNI_COMMAND: 'VERSION' }, '', copy, [NODE_DIR, '/bin']);
  if (existsSync('/usr/local/bin/sluice') || existsSync('/usr/bin/sluice')) {
    ok(t, lost, 'a copy finds sluice in /usr/local/bin or /usr/bin');
  } else {
    cniError(t, lost, '1.1.0', 999, /cannot find the sluice CNI plugin/, 'a copy with no way to find sluice');
    t.match(lost.json?.details, /SLUICE_ROOT/);
  }

  const withRoot = await runPlugin({ CNI_COMMAND: 'VERSION', SLUICE_ROOT: REPO }, '', copy, [NODE_DIR, '/bin']);
  ok(t, withRoot, 'a copy with SLUICE_ROOT');
  t.equal(withRoot.json?.cniVersion, '1.1.0');

  const cliDir = join(dir, 'pathbin');
  mkdirSync(cliDir);
  symlinkSync(join(REPO, 'bin', 'sluice.js'), join(cliDir, 'sluice'));
  const viaPath = await runPlugin(envFor('ADD', 'viapath'), cfg(agent.socket, '0.4.0'), copy, [cliDir, NODE_DIR, '/bin']);
  ok(t, viaPath, 'a copy finds sluice through the `sluice` command on PATH');
  t.equal(viaPath.json?.cniVersion, '0.4.0');
});

t.test('SLUICE_CNI_DEBUG writes diagnostics to stderr, never stdout', async (t) => {
  const agent = await FakeAgent.start(t, tempDir(t, 'cnip'));
  const r = await runPlugin({ ...envFor('DEL'), SLUICE_CNI_DEBUG: '1' }, cfg(agent.socket, '1.0.0'));
  ok(t, r, 'DEL with debug');
  t.equal(r.stdout, '');
  t.match(r.stderr, /sluice-cni: DEL container=c0ffee0123456789abcdef ifname=eth0/);
  const quiet = await runPlugin(envFor('DEL'), cfg(agent.socket, '1.0.0'));
  t.equal(quiet.stderr, '', 'quiet without it');
});
