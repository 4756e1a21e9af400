/**
 * The map modules (src/maps/) against the compiled datapath: every map the objects define
 * has one module in the registry, and every module's key and value name the C types the
 * objects give the map, with every field the module uses a member of them. The C side stays
 * the one definition; this is what keeps TypeScript from drifting from it. Compiles the
 * datapath (clang), needs no privilege.
 */
import t from 'tap';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Btf } from '../../src/bpf/btf.js';
import { buildProgram, datapathSources } from '../../src/datapath/build.js';
import { objectMaps, typeProblems } from '../../src/maps/btf-check.js';
import { MapDef } from '../../src/maps/map.js';
import { FILL_WATCHED_MAPS, MAPS } from '../../src/maps/registry.js';

const cacheDir = mkdtempSync(join(tmpdir(), 'sluice-maps-test-'));
t.teardown(() => rmSync(cacheDir, { recursive: true, force: true }));

const objects = datapathSources().map((source) => {
  const btf = Btf.fromElf(readFileSync(buildProgram(source, { cacheDir }).object));
  return { source, btf, maps: objectMaps(btf) };
});

t.test('every map of the objects has one module, and every module a map', async (tt) => {
  const defined = new Set(objects.flatMap((o) => o.maps.map((m) => m.name)));
  const registered = MAPS.map((m) => m.name);
  tt.same(registered.filter((n, i) => registered.indexOf(n) !== i), [], 'no map registered twice');
  tt.same([...defined].filter((n) => !registered.includes(n)).sort(), [], 'no map without a module');
  tt.same(registered.filter((n) => !defined.has(n)), [], 'no module without a map');
});

t.test('each module names the key and value types of its map, and fields they have', async (tt) => {
  for (const def of MAPS) {
    for (const o of objects) {
      const m = o.maps.find((x) => x.name === def.name);
      if (!m) continue;
      tt.same(def.problems(o.btf, m.key, m.value), [], `${def.name} in ${o.source}`);
      tt.equal(m.key !== undefined, def.key !== undefined, `${def.name} in ${o.source}: a key type exactly when the module names one`);
      tt.equal(m.value !== undefined, def.value !== undefined, `${def.name} in ${o.source}: a value type exactly when the module names one`);
    }
  }
});

t.test('a renamed type or a missing field is found', async (tt) => {
  const o = objects.find((x) => x.maps.some((m) => m.name === 'sl_ct_v2'))!;
  const ct = o.maps.find((m) => m.name === 'sl_ct_v2')!;
  const renamed = new MapDef<unknown, { expires: bigint }>({ name: 'sl_ct_v2', value: { name: 'sl_ct_entry_v2', fields: { expires: true } } });
  tt.match(renamed.problems(o.btf, ct.key, ct.value), [/its value is sl_ct_entry, not sl_ct_entry_v2/]);
  const missing = new MapDef<unknown, { expires: bigint; rnat: number }>({ name: 'sl_ct_v2', value: { name: 'sl_ct_entry', fields: { expires: true, rnat: true } } });
  tt.match(missing.problems(o.btf, ct.key, ct.value), [/its value sl_ct_entry has no member 'rnat' \(members: expires, /]);
  tt.same(typeProblems(o.btf, ct.key!, { name: 'sl_ct_key' }, 'its key'), [], 'a type named without fields');
});

t.test('the maps whose fill the agent exports', async (tt) => {
  tt.same(FILL_WATCHED_MAPS.map((m) => m.name), ['sl_endpoints', 'sl_metrics', 'sl_ipcache', 'sl_nodes', 'sl_prefilter', 'sl_policy', 'sl_policy_cidr', 'sl_ct_v2', 'sl_nat', 'sl_svc', 'sl_svc_be']);
});
