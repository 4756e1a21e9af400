import t from 'tap';
import { hostname } from 'node:os';
import { DEFAULTS, KEYS, masqueradePorts, nodePorts, nonMasqueradeCidrs, parseConfigText, resolveConfig, storeTls } from '../../src/config/config.js';
import { VXLAN_PORT } from '../../src/net/vxlan.js';

t.test('defaults', async (t) => {
  const c = resolveConfig({}, {});
  t.equal(c.nodeName, hostname().replace(/[^A-Za-z0-9._-]/g, '') || c.nodeName);
  t.equal(c.pinRoot, '/sys/fs/bpf/sluice');
  t.equal(c.stateDir, '/var/lib/sluice');
  t.equal(c.runDir, '/run/sluice');
  t.equal(c.clusterCIDR, '10.244.0.0/16');
  t.equal(c.blockSize, 24);
  t.equal(c.mtu, 'auto');
  t.equal(c.uplink, 'auto');
  t.same({ ...c, nodeName: undefined }, { ...DEFAULTS, nodeName: undefined });
});

t.test('file values override defaults, flags override the file', async (t) => {
  const file = parseConfigText('nodeName: n1\nblockSize: 26\nmtu: 1450\npinRoot: /sys/fs/bpf/n1/\n', 'n1.yaml');
  const c = resolveConfig(file, { blockSize: '25', uplink: 'eth1' }, 'n1.yaml');
  t.equal(c.nodeName, 'n1');
  t.equal(c.blockSize, 25, 'a flag value (a string) is parsed');
  t.equal(c.mtu, 1450);
  t.equal(c.uplink, 'eth1');
  t.equal(c.pinRoot, '/sys/fs/bpf/n1', 'trailing slash dropped');
});

t.test('an empty file is the defaults', async (t) => {
  t.same(parseConfigText('', 'x'), {});
  t.same(parseConfigText('# only a comment\n', 'x'), {});
});

t.test('errors name the source, the key and the problem', async (t) => {
  const cases: [string, Record<string, unknown>, Record<string, unknown>, RegExp][] = [
    ['unknown key', { blocksize: 24 }, {}, /^f\.yaml: blocksize: unknown key \(known: .*blockSize/],
    ['bad CIDR', { clusterCIDR: '10.244.0.0/33' }, {}, /^f\.yaml: clusterCIDR: .*above 32/],
    ['host bits', { clusterCIDR: '10.244.1.0/16' }, {}, /^f\.yaml: clusterCIDR: .*host bits set/],
    ['block larger than pool', { clusterCIDR: '10.244.0.0/24', blockSize: 16 }, {}, /^f\.yaml: blockSize: \/16 blocks do not fit/],
    ['block too small', { blockSize: 31 }, {}, /blockSize: \/31 leaves no room/],
    ['mtu not a number', { mtu: 'big' }, {}, /^f\.yaml: mtu: expected an integer from 576 to 65535, got "big"/],
    ['flag wins and is named', {}, { mtu: '70000' }, /^flag --mtu: mtu: expected an integer/],
    ['relative path', { stateDir: 'state' }, {}, /stateDir: expected an absolute path/],
    ['pin root outside bpffs', { pinRoot: '/tmp/x' }, {}, /pinRoot: '\/tmp\/x' is not under \/sys\/fs\/bpf/],
    ['bad node name', { nodeName: 'a b' }, {}, /nodeName: 'a b' is not a valid node name/],
    ['podCIDR not a block of the pool', { podCIDR: '10.0.0.0/24' }, {}, /podCIDR: 10.0.0.0\/24 is not a \/24 block of 10.244.0.0\/16/],
    ['gateway not link-local', { gatewayIP: '10.0.0.1' }, {}, /gatewayIP: 10.0.0.1 is not link-local/],
    ['bad uplink name', { uplink: 'a/b' }, {}, /uplink: 'a\/b' is not a device name/],
    ['relative node netns', { nodeNetns: 'n1' }, {}, /^f\.yaml: nodeNetns: expected an absolute path, got 'n1'/],
  ];
  for (const [name, file, flags, re] of cases) t.throws(() => resolveConfig(file, flags, 'f.yaml'), { message: re }, name);
});

t.test('malformed YAML', async (t) => {
  t.throws(() => parseConfigText('nodeName: [unclosed', 'bad.yaml'), { message: /^bad\.yaml: \(file\): not valid YAML/ });
  t.throws(() => parseConfigText('- a\n- b\n', 'list.yaml'), { message: /^list\.yaml: \(file\): expected a mapping/ });
});

t.test('storeCA, storeCert, storeKey: etcds:// only, a certificate with its key', async (t) => {
  const d = resolveConfig({}, {});
  t.same([d.storeCA, d.storeCert, d.storeKey], ['', '', ''], 'none by default');
  const c = resolveConfig({ store: 'etcds://10.0.0.1:2379/x', storeCA: '/etc/sluice/ca.pem', storeCert: '/etc/sluice/node.pem' }, { storeKey: '/etc/sluice/node-key.pem' });
  t.same([c.store, c.storeCA, c.storeCert, c.storeKey], ['etcds://10.0.0.1:2379/x', '/etc/sluice/ca.pem', '/etc/sluice/node.pem', '/etc/sluice/node-key.pem'], 'from the file and flags');
  t.same(storeTls(c), { ca: '/etc/sluice/ca.pem', cert: '/etc/sluice/node.pem', key: '/etc/sluice/node-key.pem' });
  t.same(storeTls(d), {}, 'no files: an empty object');
  t.equal(resolveConfig({ store: 'etcds://h' }, {}).storeCA, '', "etcds:// alone: the system's CAs");
  t.throws(() => resolveConfig({ store: 'etcd://h', storeCA: '/ca.pem' }, {}, 'n1.yaml'),
    { name: 'ConfigError', message: "n1.yaml: storeCA: storeCA given, but the store is not spoken to over TLS: write the store as etcds://… (or leave it out)" });
  t.throws(() => resolveConfig({}, { storeCert: '/c.pem', storeKey: '/k.pem' }),
    { message: /^flag --store-cert: storeCert: storeCert, storeKey given, but the store is not spoken to over TLS/ }, 'the file store takes none either');
  t.throws(() => resolveConfig({ store: 'etcds://h' }, { storeCert: '/c.pem' }), { message: 'flag --store-cert: storeCert: a client certificate needs its key: set storeKey too' });
  t.throws(() => resolveConfig({ store: 'etcds://h', storeKey: '/k.pem' }, {}, 'c.yaml'), { message: 'c.yaml: storeKey: a client key needs its certificate: set storeCert too' });
  t.throws(() => resolveConfig({ store: 'etcds://h' }, { storeCA: 'ca.pem' }), { message: "flag --store-ca: storeCA: expected an absolute path, got 'ca.pem'" });
  t.throws(() => resolveConfig({ store: 'etcds://h', storeKey: 42 }, {}), { message: 'config: storeKey: expected a non-empty string, got 42' });
  t.equal(KEYS.storeCA.flag, '--store-ca');
  t.equal(KEYS.storeCert.flag, '--store-cert');
  t.equal(KEYS.storeKey.flag, '--store-key');
});

t.test('store and metricsAddress', async (t) => {
  t.equal(resolveConfig({}, {}).store, 'file');
  t.equal(resolveConfig({ store: 'etcd://10.0.0.1:2379,10.0.0.2/x' }, {}).store, 'etcd://10.0.0.1:2379,10.0.0.2/x');
  t.throws(() => resolveConfig({ store: 'redis://x' }, {}), /config: store: bad store "redis:\/\/x": unknown scheme "redis"/);
  t.throws(() => resolveConfig({}, { store: 'etcd://' }), /flag --store: store: .*missing hosts/);
  t.equal(resolveConfig({}, {}).metricsAddress, '127.0.0.1:9962');
  t.equal(resolveConfig({ metricsAddress: 'off' }, {}).metricsAddress, 'off');
  t.equal(resolveConfig({ metricsAddress: '0.0.0.0:0' }, {}).metricsAddress, '0.0.0.0:0');
  t.throws(() => resolveConfig({ metricsAddress: '9962' }, {}), /metricsAddress: '9962' is not host:port/);
  t.throws(() => resolveConfig({ metricsAddress: '1.2.3.999:80' }, {}), /'1.2.3.999' in '1.2.3.999:80' is not an IPv4 address/);
  t.throws(() => resolveConfig({ metricsAddress: 'h:70000' }, {}), /is not host:port/);
});

t.test('mode', async (t) => {
  t.equal(resolveConfig({}, {}).mode, 'vxlan');
  t.equal(resolveConfig({ mode: 'hybrid' }, {}).mode, 'hybrid');
  t.equal(resolveConfig({ mode: 'vxlan' }, { mode: 'direct' }).mode, 'direct');
  t.throws(() => resolveConfig({ mode: 'geneve' }, {}), /config: mode: expected one of vxlan, direct, hybrid, got "geneve"/);
});

t.test('nodeNetns: a path, empty by default', async (t) => {
  t.equal(resolveConfig({}, {}).nodeNetns, '');
  t.equal(resolveConfig({ nodeNetns: '/run/netns/n1' }, {}).nodeNetns, '/run/netns/n1');
  t.equal(resolveConfig({}, { nodeNetns: '/run/netns/n2/' }).nodeNetns, '/run/netns/n2', 'from the flag, trailing slash dropped');
});

t.test('masquerade keys: defaults, file and flag forms', async (t) => {
  const d = resolveConfig({}, {});
  t.same([d.masquerade, d.nonMasqueradeCIDRs, d.masqueradeAddress, d.masqueradePortRange], [true, '', '', '61000-65535'], 'defaults');
  t.same(nonMasqueradeCidrs(d), ['10.244.0.0/16'], 'nonMasqueradeCIDRs defaults to the pool');
  t.same(masqueradePorts(d), { min: 61000, max: 65535 });
  const f = resolveConfig(parseConfigText('masquerade: false\nnonMasqueradeCIDRs:\n  - 10.96.0.0/12\n  - 192.168.0.0/16\nmasqueradeAddress: 198.18.0.1\nmasqueradePortRange: 62000-62999\n', 'f.yaml'), {}, 'f.yaml');
  t.same([f.masquerade, f.nonMasqueradeCIDRs, f.masqueradeAddress], [false, '10.96.0.0/12,192.168.0.0/16', '198.18.0.1'], 'from the file');
  t.same(nonMasqueradeCidrs(f), ['10.96.0.0/12', '192.168.0.0/16']);
  t.same(masqueradePorts(f), { min: 62000, max: 62999 });
  const g = resolveConfig({}, { masquerade: 'false', nonMasqueradeCIDRs: '10.0.0.0/8, 172.16.0.0/12', masqueradePortRange: '1024-2047' });
  t.same([g.masquerade, g.nonMasqueradeCIDRs, g.masqueradePortRange], [false, '10.0.0.0/8,172.16.0.0/12', '1024-2047'], 'from flags (strings)');
  t.equal(resolveConfig({}, { masquerade: 'true' }).masquerade, true);
});

t.test('masquerade keys: bad values are errors naming the key', async (t) => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ masquerade: 'yes' }, /^f\.yaml: masquerade: expected true or false, got "yes"/],
    [{ masquerade: 1 }, /^f\.yaml: masquerade: expected true or false/],
    [{ nonMasqueradeCIDRs: ['10.96.0.0/33'] }, /^f\.yaml: nonMasqueradeCIDRs: '10\.96\.0\.0\/33': .*above 32/],
    [{ nonMasqueradeCIDRs: ['10.96.0.1/12'] }, /^f\.yaml: nonMasqueradeCIDRs: '10\.96\.0\.1\/12': .*host bits set/],
    [{ nonMasqueradeCIDRs: [5] }, /^f\.yaml: nonMasqueradeCIDRs: expected a CIDR, got 5/],
    [{ nonMasqueradeCIDRs: { a: 1 } }, /^f\.yaml: nonMasqueradeCIDRs: expected a list of CIDRs/],
    [{ masqueradeAddress: '198.18.0.256' }, /^f\.yaml: masqueradeAddress: '198\.18\.0\.256' is not an IPv4 address/],
    [{ masqueradePortRange: '61000' }, /^f\.yaml: masqueradePortRange: '61000' is not a port range min-max/],
    [{ masqueradePortRange: '100-2000' }, /^f\.yaml: masqueradePortRange: 100-2000 is not within 1024-65535/],
    [{ masqueradePortRange: '61000-70000' }, /^f\.yaml: masqueradePortRange: 61000-70000 is not within 1024-65535/],
    [{ masqueradePortRange: '62000-61000' }, /^f\.yaml: masqueradePortRange: 62000-61000 is empty/],
  ];
  for (const [file, re] of cases) t.throws(() => resolveConfig(file, {}, 'f.yaml'), re, JSON.stringify(file));
  t.throws(() => resolveConfig({}, { masqueradePortRange: 'x' }), /^flag --masquerade-port-range: masqueradePortRange: /, 'a flag names itself');
});

t.test('service keys: defaults, file and flag forms', async (t) => {
  const d = resolveConfig({}, {});
  t.same([d.serviceCIDR, d.nodePortRange], ['10.96.0.0/12', '30000-32767'], 'defaults (as Kubernetes)');
  t.same(nodePorts(d), { min: 30000, max: 32767 });
  const f = resolveConfig(parseConfigText('serviceCIDR: 10.112.0.0/16\nnodePortRange: 20000-20999\n', 'f.yaml'), {}, 'f.yaml');
  t.same([f.serviceCIDR, f.nodePortRange], ['10.112.0.0/16', '20000-20999'], 'from the file');
  const g = resolveConfig({}, { serviceCIDR: '172.30.0.0/24', nodePortRange: '80-90' });
  t.same([g.serviceCIDR, g.nodePortRange], ['172.30.0.0/24', '80-90'], 'from flags; a NodePort range may be below 1024');
  t.equal(KEYS.serviceCIDR.flag, '--service-cidr');
  t.equal(KEYS.nodePortRange.flag, '--node-port-range');
});

t.test('service keys: bad values are errors naming the key', async (t) => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ serviceCIDR: '10.96.0.0/33' }, /^f\.yaml: serviceCIDR: .*above 32/],
    [{ serviceCIDR: '10.96.0.1/12' }, /^f\.yaml: serviceCIDR: .*host bits set/],
    [{ serviceCIDR: 'fd00::/108' }, /^f\.yaml: serviceCIDR: /],
    [{ serviceCIDR: '10.96.0.0/30' }, /^f\.yaml: serviceCIDR: 10\.96\.0\.0\/30 is too small/],
    [{ serviceCIDR: '10.244.128.0/20' }, /^f\.yaml: serviceCIDR: 10\.244\.128\.0\/20 overlaps clusterCIDR 10\.244\.0\.0\/16/],
    [{ serviceCIDR: '10.0.0.0/8' }, /^f\.yaml: serviceCIDR: 10\.0\.0\.0\/8 overlaps clusterCIDR/, ],
    [{ serviceCIDR: '169.254.0.0/16' }, /^f\.yaml: serviceCIDR: 169\.254\.0\.0\/16 holds the pods' gateway address/],
    [{ serviceCIDR: 5 }, /^f\.yaml: serviceCIDR: expected a non-empty string/],
    [{ nodePortRange: '30000' }, /^f\.yaml: nodePortRange: '30000' is not a port range min-max \(for example 30000-32767\)/],
    [{ nodePortRange: '0-100' }, /^f\.yaml: nodePortRange: 0-100 is not within 1-65535/],
    [{ nodePortRange: '30000-70000' }, /^f\.yaml: nodePortRange: 30000-70000 is not within 1-65535/],
    [{ nodePortRange: '32767-30000' }, /^f\.yaml: nodePortRange: 32767-30000 is empty/],
    [{ nodePortRange: '60000-61000' }, /^f\.yaml: nodePortRange: 60000-61000 overlaps masqueradePortRange 61000-65535/],
    [{ masqueradePortRange: '32000-33000' }, /^f\.yaml: masqueradePortRange: 32000-33000 overlaps nodePortRange 30000-32767/],
    [{ nodePortRange: `${VXLAN_PORT - 1}-${VXLAN_PORT + 1}` }, new RegExp(`^f\\.yaml: nodePortRange: ${VXLAN_PORT - 1}-${VXLAN_PORT + 1} holds the overlay's port ${VXLAN_PORT}`)],
  ];
  for (const [file, re] of cases) t.throws(() => resolveConfig(file, {}, 'f.yaml'), re, JSON.stringify(file));
  t.throws(() => resolveConfig({}, { serviceCIDR: 'x' }), /^flag --service-cidr: serviceCIDR: /, 'a flag names itself');
  t.throws(() => resolveConfig({}, { nodePortRange: 'x' }), /^flag --node-port-range: nodePortRange: /);
  t.doesNotThrow(() => resolveConfig({ clusterCIDR: '10.96.0.0/16', serviceCIDR: '10.112.0.0/12' }, {}), 'a pool moved out of the way of the default is fine');
});
