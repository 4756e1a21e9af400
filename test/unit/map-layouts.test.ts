/**
 * The map layout rule (src/maps/migrate.ts): a map whose layout changes is a new map,
 * named with its layout, with a migration from its predecessor. The layouts of this build
 * are held to the record in include/sluice/map-layouts.json; a change there without a new
 * name fails here, saying what to do.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { datapathMapLayouts, keyFamily, layoutVersion, versionedName, type MapLayout } from '../../src/datapath/layouts.js';
import { byName, MIGRATIONS } from '../../src/maps/migrate.js';
import { REPO } from '../helpers/env.js';

const RECORD = join(REPO, 'include', 'sluice', 'map-layouts.json');

t.test('layout versions from names', async (tt) => {
  tt.same(layoutVersion('sl_ct'), { base: 'sl_ct', version: 1 });
  tt.same(layoutVersion('sl_ct_v2'), { base: 'sl_ct', version: 2 });
  tt.same(layoutVersion('sl_x_v1'), { base: 'sl_x_v1', version: 1 }, 'there is no _v1: layout 1 has no suffix');
  tt.equal(versionedName('sl_ct', 1), 'sl_ct');
  tt.equal(versionedName('sl_ct', 3), 'sl_ct_v3');
});

t.test('byName copies the fields both layouts have and leaves the new ones zero', async (tt) => {
  const blank = { expires: 0n, packets: 0n, policy: 0, src_ep: 0, pad: [0, 0, 0, 0] };
  tt.same(byName({ expires: 5n, packets: 7n, policy: 3, state: 1, pad: [9, 9] }, blank), { expires: 5n, packets: 7n, policy: 3, src_ep: 0, pad: [9, 9, 0, 0] });
  tt.same(byName({ policy: 'x' }, { policy: 0 }), { policy: 0 }, 'a field whose type changed is not copied');
  tt.same(byName([{ a: 1 }, { a: 2 }], [{ a: 0, b: 0 }, { a: 0, b: 0 }]), [{ a: 1, b: 0 }, { a: 2, b: 0 }], 'per-CPU values, slot by slot');
});

t.test('the ct migration names the endpoints a flow is between', async (tt) => {
  const mig = MIGRATIONS.find((m) => m.to === 'sl_ct_v2')!;
  const key = { saddr: '10.244.0.1', daddr: '10.244.1.1', sport: 1, dport: 2, protocol: 17 };
  const blank = { expires: 0n, packets: 0n, bytes: 0n, policy: 0, src_ep: 0, dst_ep: 0, nat: 0, state: 0, pad: [0, 0, 0, 0, 0, 0, 0] };
  const [k, v] = mig.convert(key, { expires: 9n, packets: 4n, bytes: 400n, policy: 7, state: 1, pad: [0, 0, 0] }, blank, { endpointOf: (ip) => (ip === '10.244.0.1' ? 3 : 0) })!;
  tt.same(k, key);
  tt.same(v, { ...blank, expires: 9n, packets: 4n, bytes: 400n, policy: 7, state: 1, src_ep: 3, dst_ep: 0, nat: 0 });
});

t.test('every map of this build keeps the layout recorded for its name', async (tt) => {
  const record = new Map((JSON.parse(readFileSync(RECORD, 'utf8')) as MapLayout[]).map((m) => [m.name, m]));
  const now = datapathMapLayouts();
  for (const m of now) {
    const was = record.get(m.name);
    if (!was) {
      tt.fail(`map ${m.name} is not in ${RECORD}: a new map? record it with \`sluice bpf layouts -o json > include/sluice/map-layouts.json\``);
      continue;
    }
    const same = JSON.stringify({ ...m, maxEntries: 0 }) === JSON.stringify({ ...was, maxEntries: 0 }) && m.maxEntries === was.maxEntries;
    tt.ok(same, same ? `${m.name}: layout ${m.version} as recorded` : `map ${m.name} changed its layout (${JSON.stringify(was.value)} -> ${JSON.stringify(m.value)}; key ${JSON.stringify(was.key)} -> ${JSON.stringify(m.key)}; type ${was.type} -> ${m.type}; entries ${was.maxEntries} -> ${m.maxEntries}). A pinned map keeps its layout: name the changed map ${versionedName(m.base, m.version + 1)}, add a migration from ${m.name} in src/maps/migrate.ts, then record the layouts with \`sluice bpf layouts -o json > include/sluice/map-layouts.json\``);
  }
  for (const name of record.keys()) tt.ok(now.some((m) => m.name === name), `recorded map ${name} still exists (or its record was replaced by its successor's)`);
});

t.test('every versioned map migrates from its predecessor; names fit the kernel (15 characters)', async (tt) => {
  for (const m of datapathMapLayouts()) {
    tt.ok(m.name.length <= 15, `${m.name}: ${m.name.length} characters (bpftool shows 15)`);
    if (m.version < 2) continue;
    const from = versionedName(m.base, m.version - 1);
    tt.ok(MIGRATIONS.some((x) => x.from === from && x.to === m.name), `${m.name} has a migration from ${from}`);
  }
});

t.test('address-keyed maps are per family: the family from the key, the name saying it', async (tt) => {
  tt.equal(keyFamily('x', ['struct k (4 bytes)', 'ip: sl_ipv4_t @0 (4)']), 4);
  tt.equal(keyFamily('x', ['struct k (16 bytes)', 'ip: sl_ipv6_t @0 (16)']), 6);
  tt.equal(keyFamily('x', ['struct k (8 bytes)', 'endpoint: __u32 @0 (4)', 'identity: __u32 @4 (4)']), 'any');
  tt.equal(keyFamily('x', ['struct sl_ipv4_t_holder (4 bytes)', 'n: __u32 @0 (4)']), 'any', 'the type line is not a field');
  tt.throws(() => keyFamily('sl_mixed', ['struct k (20 bytes)', 'a: sl_ipv4_t @0 (4)', 'b: sl_ipv6_t @4 (16)']), /map sl_mixed: its key holds both an IPv4 and an IPv6 address; address-keyed maps are per family/);
  const maps = datapathMapLayouts();
  for (const m of maps) {
    if (m.family === 6) tt.ok(m.base.endsWith('6'), `${m.name}: an IPv6 map's name ends in 6 (the twin of ${m.base.slice(0, -1)})`);
    else tt.notOk(m.base.endsWith('6'), `${m.name}: a name ending in 6 is kept for IPv6 maps`);
  }
  tt.same(maps.filter((m) => m.family === 4).map((m) => m.name), ['sl_ct_v2', 'sl_endpoints', 'sl_ipcache', 'sl_nat', 'sl_nodes', 'sl_nonmasq', 'sl_policy_cidr', 'sl_prefilter', 'sl_svc', 'sl_svc_aff'],
    'the IPv4 maps: keyed by address, each gets an IPv6 twin with dual stack; every other map is shared by both families');
});
