/**
 * The pure CNI layer: environment and CNI_ARGS parsing, network configuration validation,
 * version negotiation, results per spec version, error objects and prevResult comparison.
 */
import t, { type Test } from 'tap';
import {
  CniError, ErrorCode, SUPPORTED_VERSIONS, buildAddResult, compareVersions, comparePrevResult, decodeConfig,
  errorObject, ifnameProblem, negotiateVersion, parseCniArgs, parseNetConf, parsePrevResult, readEnv,
  requestedVersion, validateAddResponse, versionResult,
} from '../../src/cni/spec.js';
import type { AgentEndpoint } from '../../src/api/types.js';

/** Asserts fn throws a CniError with `code` whose message matches `msg`. */
function throwsCni(tt: Test, fn: () => unknown, code: number, msg?: RegExp, what?: string): void {
  try {
    fn();
    tt.fail(`${what ?? 'call'}: expected CniError ${code}, nothing thrown`);
  } catch (e) {
    tt.ok(e instanceof CniError, `${what ?? 'call'}: a CniError (${(e as Error).message})`);
    tt.equal((e as CniError).code, code, `${what ?? 'call'}: code ${code}`);
    if (msg) tt.match((e as Error).message, msg, `${what ?? 'call'}: message`);
  }
}

const conf = (o: Record<string, unknown>) => JSON.stringify({ cniVersion: '1.0.0', name: 'sluice', type: 'sluice', ...o });

t.test('readEnv: required variables per command, named in the error', async (t) => {
  const add = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'abc123', CNI_NETNS: '/var/run/netns/p', CNI_IFNAME: 'eth0', CNI_PATH: '/opt/cni/bin:/usr/lib/cni' };
  const e = readEnv(add);
  t.same(e, { command: 'ADD', containerId: 'abc123', netns: '/var/run/netns/p', ifname: 'eth0', path: ['/opt/cni/bin', '/usr/lib/cni'] });
  for (const v of ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME']) {
    for (const cmd of ['ADD', 'CHECK']) {
      throwsCni(t, () => readEnv({ ...add, CNI_COMMAND: cmd, [v]: undefined }), ErrorCode.InvalidEnvironment, new RegExp(`${v} missing for ${cmd}`), `${cmd} without ${v}`);
      throwsCni(t, () => readEnv({ ...add, CNI_COMMAND: cmd, [v]: '' }), ErrorCode.InvalidEnvironment, new RegExp(v), `${cmd} with empty ${v}`);
    }
  }
  throwsCni(t, () => readEnv({ CNI_COMMAND: 'ADD' }), 4, /variables CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME missing for ADD/, 'every missing one named');
  t.same(readEnv({ CNI_COMMAND: 'DEL', CNI_CONTAINERID: 'abc', CNI_IFNAME: 'eth0' }), { command: 'DEL', containerId: 'abc', ifname: 'eth0', path: [] }, 'DEL needs no netns');
  throwsCni(t, () => readEnv({ CNI_COMMAND: 'DEL', CNI_IFNAME: 'eth0' }), 4, /CNI_CONTAINERID missing for DEL/);
  throwsCni(t, () => readEnv({ CNI_COMMAND: 'DEL', CNI_CONTAINERID: 'abc' }), 4, /CNI_IFNAME missing for DEL/);
  for (const cmd of ['VERSION', 'STATUS', 'GC']) t.equal(readEnv({ CNI_COMMAND: cmd }).command, cmd, `${cmd} needs only CNI_COMMAND`);
  t.equal(readEnv({ CNI_COMMAND: 'GC', CNI_CONTAINERID: '!!' }).command, 'GC', 'GC ignores the per-container variables');
  throwsCni(t, () => readEnv({}), 4, /CNI_COMMAND is missing/);
  throwsCni(t, () => readEnv({ CNI_COMMAND: 'add' }), 4, /unknown CNI_COMMAND 'add'/, 'commands are upper case');
  throwsCni(t, () => readEnv({ CNI_COMMAND: 'FROB' }), 4, /unknown CNI_COMMAND 'FROB'/);
  throwsCni(t, () => readEnv({ ...add, CNI_CONTAINERID: '-abc' }), 4, /CNI_CONTAINERID '-abc' is not a valid container id/);
  throwsCni(t, () => readEnv({ ...add, CNI_CONTAINERID: 'a b' }), 4, /container id/);
  t.equal(readEnv({ ...add, CNI_CONTAINERID: 'A1_b.c-d' }).containerId, 'A1_b.c-d');
  throwsCni(t, () => readEnv({ ...add, CNI_IFNAME: 'a-very-long-name0' }), 4, /CNI_IFNAME 'a-very-long-name0' is not a valid interface name: it is longer than 15/);
  throwsCni(t, () => readEnv({ ...add, CNI_IFNAME: 'eth/0' }), 4, /CNI_IFNAME/);
  t.equal(readEnv({ ...add, CNI_ARGS: 'A=1' }).args, 'A=1');
});

t.test('ifnameProblem follows the spec rules', async (t) => {
  t.equal(ifnameProblem('eth0'), undefined);
  t.equal(ifnameProblem('a'.repeat(15)), undefined, '15 characters is fine');
  t.match(ifnameProblem('a'.repeat(16)), /longer than 15/);
  t.match(ifnameProblem(''), /empty/);
  t.match(ifnameProblem('.'), /'\.'/);
  t.match(ifnameProblem('..'), /'\.\.'/);
  for (const bad of ['a/b', 'a:b', 'a b', 'a\tb']) t.ok(ifnameProblem(bad), `'${bad}' rejected`);
});

t.test('parseCniArgs: K8S pod identity, unknown keys ignored, malformed pairs rejected', async (t) => {
  const a = parseCniArgs('IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;K8S_POD_NAME=web-0;K8S_POD_INFRA_CONTAINER_ID=abc;K8S_POD_UID=u-1');
  t.equal(a.podNamespace, 'shop');
  t.equal(a.podName, 'web-0');
  t.equal(a.ignoreUnknown, true);
  t.same(a.pairs, { IgnoreUnknown: '1', K8S_POD_NAMESPACE: 'shop', K8S_POD_NAME: 'web-0', K8S_POD_INFRA_CONTAINER_ID: 'abc', K8S_POD_UID: 'u-1' });
  const b = parseCniArgs('FOO=bar');
  t.equal(b.podNamespace, undefined, 'no pod namespace without the key');
  t.equal(b.podName, undefined);
  t.equal(b.ignoreUnknown, false, 'unknown keys are ignored even without IgnoreUnknown');
  t.same(parseCniArgs(undefined).pairs, {});
  t.same(parseCniArgs('').pairs, {});
  t.same(parseCniArgs('A=1;;B=2;').pairs, { A: '1', B: '2' }, 'empty segments skipped');
  t.same(parseCniArgs('A=x=y').pairs, { A: 'x=y' }, 'the value may hold =');
  t.same(parseCniArgs('A=').pairs, { A: '' }, 'empty value');
  t.equal(parseCniArgs('IgnoreUnknown=true').ignoreUnknown, true);
  t.equal(parseCniArgs('K8S_POD_NAME=').podName, undefined, 'an empty pod name is not a pod name');
  throwsCni(t, () => parseCniArgs('K8S_POD_NAME'), 4, /CNI_ARGS: 'K8S_POD_NAME' is not of the form KEY=VALUE/);
  throwsCni(t, () => parseCniArgs('A=1;=2'), 4, /'=2'/);
});

t.test('version negotiation', async (t) => {
  t.same(SUPPORTED_VERSIONS, ['0.4.0', '1.0.0', '1.1.0']);
  for (const v of SUPPORTED_VERSIONS) t.equal(negotiateVersion({ cniVersion: v }), v);
  for (const v of ['0.3.1', '0.3.0', '0.2.0', '0.1.0', '2.0.0', '1.0', 'banana']) {
    throwsCni(t, () => negotiateVersion({ cniVersion: v }), ErrorCode.IncompatibleVersion, /incompatible CNI versions/, `cniVersion ${v}`);
  }
  try {
    negotiateVersion({ cniVersion: '0.3.1' });
  } catch (e) {
    t.match((e as CniError).details, /asks for cniVersion 0\.3\.1; sluice supports 0\.4\.0, 1\.0\.0, 1\.1\.0/);
  }
  throwsCni(t, () => negotiateVersion({}), 1, /incompatible/, 'no cniVersion');
  throwsCni(t, () => negotiateVersion({ cniVersion: 1 }), 7, /must be a string/);
  t.equal(negotiateVersion({ cniVersions: ['0.3.1', '1.0.0', '1.1.0', '1.2.0'] }), '1.1.0', 'cniVersions: the highest common');
  t.equal(negotiateVersion({ cniVersions: ['1.0.0', '0.4.0'] }), '1.0.0');
  throwsCni(t, () => negotiateVersion({ cniVersions: ['0.3.1'] }), 1, /incompatible/);
  throwsCni(t, () => negotiateVersion({ cniVersions: '1.0.0' }), 7, /cniVersions must be a list/);
  t.equal(negotiateVersion({ cniVersion: '0.4.0', cniVersions: ['1.1.0'] }), '0.4.0', 'cniVersion wins: the runtime chose it');
  t.equal(compareVersions('0.4.0', '1.0.0'), -1);
  t.equal(compareVersions('1.1.0', '1.0.0'), 1);
  t.equal(compareVersions('1.0', '1.0.0'), 0);
  t.equal(requestedVersion('{"cniVersion":"0.4.0"}'), '0.4.0');
  t.equal(requestedVersion('{"cniVersion":"0.3.1"}'), undefined);
  t.equal(requestedVersion('garbage'), undefined);
  t.equal(requestedVersion(undefined), undefined);
});

t.test('VERSION output', async (t) => {
  t.same(versionResult(), { cniVersion: '1.1.0', supportedVersions: ['0.4.0', '1.0.0', '1.1.0'] });
  t.same(versionResult('0.4.0'), { cniVersion: '0.4.0', supportedVersions: ['0.4.0', '1.0.0', '1.1.0'] }, 'speaks the asked version');
  t.equal(versionResult('0.3.1').cniVersion, '1.1.0', 'an unsupported ask gets the latest');
});

t.test('decodeConfig: never a SyntaxError, always CniError 6', async (t) => {
  for (const [text, re] of [['', /no network configuration/], ['  \n', /no network configuration/], ['garbage', /not valid JSON/],
    ['{"name": ', /not valid JSON/], ['[1,2]', /not a JSON object/], ['null', /not a JSON object/], ['"x"', /not a JSON object/], ['42', /not a JSON object/],
    ['\u0000\u0001\u00ff', /not valid JSON/]] as const) {
    throwsCni(t, () => decodeConfig(text), ErrorCode.DecodeFailure, re, JSON.stringify(text));
  }
  t.same(decodeConfig('{"a":1}'), { a: 1 });
});

t.test('parseNetConf: fields, defaults and errors', async (t) => {
  const c = parseNetConf(conf({}), 'ADD');
  t.equal(c.cniVersion, '1.0.0');
  t.equal(c.name, 'sluice');
  t.equal(c.type, 'sluice');
  t.equal(c.socket, '/run/sluice/agent.sock', 'default socket');
  t.same(c.labels, {});
  t.equal(c.prevResult, undefined);
  t.equal(c.dns, undefined);
  t.equal(c.timeoutSeconds, undefined);
  t.equal(c.validAttachments, undefined);

  const full = parseNetConf(conf({
    socket: '/tmp/x/agent.sock', timeoutSeconds: 2.5, prevResult: { interfaces: [] }, runtimeConfig: { portMappings: [] },
    dns: { nameservers: ['10.96.0.10'], search: ['svc.cluster.local'], domain: 'cluster.local', options: ['ndots:5'], junk: 1 },
    args: { labels: { team: 'blue' }, cni: { labels: [{ key: 'app', value: 'web' }, { key: 'bad' }, 'junk'] } },
  }), 'ADD');
  t.equal(full.socket, '/tmp/x/agent.sock');
  t.equal(full.timeoutSeconds, 2.5);
  t.same(full.prevResult, { interfaces: [] });
  t.same(full.runtimeConfig, { portMappings: [] });
  t.same(full.dns, { nameservers: ['10.96.0.10'], domain: 'cluster.local', search: ['svc.cluster.local'], options: ['ndots:5'] });
  t.same(full.labels, { team: 'blue', app: 'web' }, 'args.labels and args.cni.labels; malformed entries ignored');

  throwsCni(t, () => parseNetConf(conf({ name: undefined }), 'ADD'), 7, /has no name/);
  throwsCni(t, () => parseNetConf(conf({ name: '' }), 'ADD'), 7, /has no name/);
  throwsCni(t, () => parseNetConf(conf({ name: '-bad' }), 'ADD'), 7, /network name '-bad' is not valid/);
  throwsCni(t, () => parseNetConf(conf({ type: undefined }), 'ADD'), 7, /has no type/);
  throwsCni(t, () => parseNetConf(conf({ type: 3 }), 'ADD'), 7, /has no type/);
  throwsCni(t, () => parseNetConf(conf({ cniVersion: '0.3.1' }), 'ADD'), 1, /incompatible/);
  throwsCni(t, () => parseNetConf(conf({ socket: 'relative.sock' }), 'ADD'), 7, /absolute path/);
  throwsCni(t, () => parseNetConf(conf({ socket: 7 }), 'ADD'), 7, /absolute path/);
  throwsCni(t, () => parseNetConf(conf({ socket: `/${'x'.repeat(120)}` }), 'ADD'), 7, /longer than 107 bytes/);
  throwsCni(t, () => parseNetConf(conf({ timeoutSeconds: 0 }), 'ADD'), 7, /timeoutSeconds/);
  throwsCni(t, () => parseNetConf(conf({ timeoutSeconds: '5' }), 'ADD'), 7, /timeoutSeconds/);
  throwsCni(t, () => parseNetConf('garbage', 'DEL'), 6, /not valid JSON/);

  // STATUS and GC came with 1.1.0; CHECK with 0.4.0 (so every supported version has it).
  for (const cmd of ['STATUS', 'GC'] as const) {
    for (const v of ['0.4.0', '1.0.0']) throwsCni(t, () => parseNetConf(conf({ cniVersion: v }), cmd), 1, new RegExp(`${cmd} needs cniVersion 1\\.1\\.0`), `${cmd} at ${v}`);
    t.equal(parseNetConf(conf({ cniVersion: '1.1.0' }), cmd).cniVersion, '1.1.0');
  }
  for (const v of SUPPORTED_VERSIONS) t.equal(parseNetConf(conf({ cniVersion: v }), 'CHECK').cniVersion, v);
});

t.test('parseNetConf: GC valid attachments', async (t) => {
  const v11 = (o: Record<string, unknown>) => conf({ cniVersion: '1.1.0', ...o });
  const c = parseNetConf(v11({ 'cni.dev/valid-attachments': [{ containerID: 'c1', ifname: 'eth0' }, { containerID: 'c2', ifname: 'net1' }] }), 'GC');
  t.same(c.validAttachments, [{ containerId: 'c1', ifname: 'eth0' }, { containerId: 'c2', ifname: 'net1' }]);
  t.same(parseNetConf(v11({ 'cni.dev/attachments': [{ containerID: 'c1', ifname: 'eth0' }] }), 'GC').validAttachments,
    [{ containerId: 'c1', ifname: 'eth0' }], 'the older key libcni also writes');
  t.same(parseNetConf(v11({ 'cni.dev/valid-attachments': [] }), 'GC').validAttachments, [], 'an empty list is a list');
  t.equal(parseNetConf(v11({}), 'GC').validAttachments, undefined, 'absent stays absent');
  throwsCni(t, () => parseNetConf(v11({ 'cni.dev/valid-attachments': {} }), 'GC'), 7, /must be a list/);
  throwsCni(t, () => parseNetConf(v11({ 'cni.dev/valid-attachments': [{ containerId: 'c1', ifname: 'eth0' }] }), 'GC'), 7, /\[0\] must be \{"containerID"/);
  throwsCni(t, () => parseNetConf(v11({ 'cni.dev/valid-attachments': [{ containerID: 'c1' }] }), 'GC'), 7, /must be/);
});

const ENDPOINT: AgentEndpoint = {
  id: 7, name: 'shop/web-0', ip: '10.244.0.5', mac: '0A:58:0A:F4:00:05', ifname: 'eth0', netns: '/var/run/netns/p1', hostIfname: 'sl0123456789a', mtu: 1450,
};

t.test('ADD result, field by field, per version', async (t) => {
  const input = { ifname: 'eth0', netns: '/var/run/netns/p1', ip: '10.244.0.5', mac: '0A:58:0A:F4:00:05', gateway: '169.254.1.1', mtu: 1450 };
  const r10 = buildAddResult('1.0.0', input);
  t.same(Object.keys(r10).sort(), ['cniVersion', 'dns', 'interfaces', 'ips', 'routes']);
  t.equal(r10.cniVersion, '1.0.0');
  t.same(r10.interfaces, [{ name: 'eth0', mac: '0a:58:0a:f4:00:05', sandbox: '/var/run/netns/p1' }], 'lower-case MAC, no mtu before 1.1.0');
  t.same(r10.ips, [{ address: '10.244.0.5/32', gateway: '169.254.1.1', interface: 0 }]);
  t.notOk('version' in r10.ips[0]!, '1.0.0 IPs carry no version');
  t.same(r10.routes, [{ dst: '0.0.0.0/0', gw: '169.254.1.1' }]);
  t.same(r10.dns, {});

  const r04 = buildAddResult('0.4.0', input);
  t.equal(r04.cniVersion, '0.4.0');
  t.same(r04.ips, [{ version: '4', address: '10.244.0.5/32', gateway: '169.254.1.1', interface: 0 }]);
  t.same(r04.interfaces, r10.interfaces);
  t.same(r04.routes, r10.routes);

  const r11 = buildAddResult('1.1.0', input);
  t.equal(r11.cniVersion, '1.1.0');
  t.same(r11.interfaces, [{ name: 'eth0', mac: '0a:58:0a:f4:00:05', sandbox: '/var/run/netns/p1', mtu: 1450 }], '1.1.0 adds mtu');
  t.same(r11.ips, r10.ips);

  t.same(buildAddResult('1.0.0', { ...input, dns: { nameservers: ['10.96.0.10'] } }).dns, { nameservers: ['10.96.0.10'] });
});

t.test('error objects', async (t) => {
  t.same(errorObject('1.0.0', new CniError(11, 'try later', 'because')), { cniVersion: '1.0.0', code: 11, msg: 'try later', details: 'because' });
  t.same(errorObject('0.4.0', new CniError(6, 'bad')), { cniVersion: '0.4.0', code: 6, msg: 'bad' }, 'no details key without details');
  t.same(Object.values(ErrorCode).sort((a, b) => a - b), [1, 2, 3, 4, 5, 6, 7, 11, 50, 999, 1000, 1001]);
});

t.test('validateAddResponse: accepts the contract, rejects the rest with 1001', async (t) => {
  const good = { endpoint: { ...ENDPOINT }, gateway: '169.254.1.1', podCIDR: '10.244.0.0/24' };
  t.same(validateAddResponse(good), good);
  t.same(validateAddResponse({ ...good, endpoint: { ...ENDPOINT, id: 'ep-1' }, extra: true }).endpoint.id, 'ep-1', 'string ids and extra fields are fine');
  const bad: [string, unknown][] = [
    ['not an object', 'ok'],
    ['no endpoint', { gateway: '169.254.1.1', podCIDR: 'x' }],
    ['ip with prefix', { ...good, endpoint: { ...ENDPOINT, ip: '10.244.0.5/32' } }],
    ['ip not v4', { ...good, endpoint: { ...ENDPOINT, ip: 'fe80::1' } }],
    ['bad mac', { ...good, endpoint: { ...ENDPOINT, mac: 'nope' } }],
    ['mtu string', { ...good, endpoint: { ...ENDPOINT, mtu: '1500' } }],
    ['no id', { ...good, endpoint: { ...ENDPOINT, id: undefined } }],
    ['no hostIfname', { ...good, endpoint: { ...ENDPOINT, hostIfname: undefined } }],
    ['bad gateway', { ...good, gateway: 'gw' }],
    ['no podCIDR', { ...good, podCIDR: undefined }],
  ];
  for (const [what, body] of bad) throwsCni(t, () => validateAddResponse(body), ErrorCode.AgentProtocol, /the sluice agent's answer is not what the plugin expects/, what);
});

t.test('prevResult parsing and comparison', async (t) => {
  const r10 = buildAddResult('1.0.0', { ifname: 'eth0', netns: '/var/run/netns/p1', ip: '10.244.0.5', mac: ENDPOINT.mac, gateway: '169.254.1.1' });
  const r04 = buildAddResult('0.4.0', { ifname: 'eth0', netns: '/var/run/netns/p1', ip: '10.244.0.5', mac: ENDPOINT.mac, gateway: '169.254.1.1' });
  for (const [v, r] of [['1.0.0', r10], ['0.4.0', r04]] as const) {
    const p = parsePrevResult(JSON.parse(JSON.stringify(r)));
    t.same(p.interfaces, [{ name: 'eth0', mac: '0a:58:0a:f4:00:05', sandbox: '/var/run/netns/p1' }], `${v} interfaces`);
    t.same(p.ips, [{ address: '10.244.0.5/32', interface: 0 }], `${v} ips`);
    t.same(comparePrevResult(p, { ifname: 'eth0', netns: '/var/run/netns/p1', endpoint: ENDPOINT }), [], `${v}: matches the agent`);
    t.same(comparePrevResult(p, { ifname: 'eth0', netns: '/var/run/netns/p1' }), [], `${v}: matches without the agent's endpoint`);
  }
  const p = parsePrevResult(r10);
  t.match(comparePrevResult(p, { ifname: 'eth1', netns: '/var/run/netns/p1' }), [/no interface eth1 in sandbox/]);
  t.match(comparePrevResult(p, { ifname: 'eth0', netns: '/var/run/netns/other' }), [/no interface eth0 in sandbox \/var\/run\/netns\/other/]);
  t.match(comparePrevResult(p, { ifname: 'eth0', netns: '/var/run/netns/p1', endpoint: { ...ENDPOINT, ip: '10.244.0.9' } }),
    [/prevResult has address 10\.244\.0\.5\/32, the agent has 10\.244\.0\.9\/32/]);
  t.match(comparePrevResult(p, { ifname: 'eth0', netns: '/var/run/netns/p1', endpoint: { ...ENDPOINT, mac: '0a:58:00:00:00:01' } }),
    [/prevResult has MAC 0a:58:0a:f4:00:05, the agent has 0a:58:00:00:00:01/]);
  t.match(comparePrevResult(parsePrevResult({ interfaces: r10.interfaces, ips: [] }), { ifname: 'eth0', netns: '/var/run/netns/p1', endpoint: ENDPOINT }),
    [/assigns no address to interface eth0/]);
  t.same(parsePrevResult({}), { interfaces: [], ips: [] }, 'an empty result parses');
  throwsCni(t, () => parsePrevResult('x'), 7, /prevResult is not a CNI result/);
  throwsCni(t, () => parsePrevResult({ interfaces: {} }), 7, /interfaces is not a list/);
  throwsCni(t, () => parsePrevResult({ interfaces: [{}] }), 7, /interface has no name/);
  throwsCni(t, () => parsePrevResult({ ips: [{ gateway: 'x' }] }), 7, /ip has no address/);
});
