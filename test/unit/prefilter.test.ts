/**
 * The prefilter's pure logic (src/prefilter/cidr.ts): CIDR validation and normalisation,
 * store keys and records, the map diff, the longest-prefix reference model; and the store
 * side (src/prefilter/store.ts) on a file store in a temporary directory: all-or-nothing,
 * idempotent, ids unique and never reused, concurrent adds.
 */
import t from 'tap';
import { FileStore } from '../../src/store/file.js';
import type { Store } from '../../src/store/types.js';
import {
  PrefilterInputError, cidrOfKey, compareCidrs, describeDiff, diffRules, matchRule, parseDenyCidr,
  parseDenyCidrs, parseEntry, type PrefilterEntry,
} from '../../src/prefilter/cidr.js';
import type { PrefilterRule as MapRule } from '../../src/maps/prefilter.js';
import { PREFILTER_NEXT_ID_KEY, prefilterKey } from '../../src/store/keys.js';
import { addEntries, deleteEntries, listEntries } from '../../src/prefilter/store.js';
import { tempDir } from '../helpers/env.js';

t.test('parseDenyCidr: valid CIDRs are normalised', async (t) => {
  t.equal(parseDenyCidr('198.18.77.0/24'), '198.18.77.0/24');
  t.equal(parseDenyCidr(' 10.0.0.0/8 '), '10.0.0.0/8', 'surrounding spaces are ignored');
  t.equal(parseDenyCidr('10.1.2.3/32'), '10.1.2.3/32');
  t.equal(parseDenyCidr('0.0.0.0/0'), '0.0.0.0/0');
  t.equal(parseDenyCidr('10.0.0.0/08'), '10.0.0.0/8', 'a leading zero in the length is read as decimal');
  t.equal(parseDenyCidr('255.255.255.255/32'), '255.255.255.255/32');
});

t.test('parseDenyCidr: every error names the argument', async (t) => {
  const bad: [string, RegExp][] = [
    ['198.18.77.1/24', /'198\.18\.77\.1\/24' has host bits set: did you mean 198\.18\.77\.0\/24\?/],
    ['10.1.0.0/8', /did you mean 10\.0\.0\.0\/8/],
    ['198.18.77.0', /'198\.18\.77\.0' is not a CIDR like .*for one address write 198\.18\.77\.0\/32/],
    ['198.18.77.0/33', /'198\.18\.77\.0\/33': prefix length 33 is above 32/],
    ['198.18.256.0/24', /'198\.18\.256\.0\/24' is not a CIDR: 198\.18\.256\.0 is not an IPv4 address/],
    ['010.0.0.0/8', /'010\.0\.0\.0\/8' is not a CIDR/],
    ['banana', /'banana' is not a CIDR like 198\.18\.0\.0\/15/],
    ['', /'' is not a CIDR/],
    ['10.0.0.0/', /'10\.0\.0\.0\/' is not a CIDR/],
    ['10.0.0.0/8/8', /is not a CIDR/],
    ['10.0.0/8', /'10\.0\.0\/8' is not a CIDR/],
    ['-1.0.0.0/8', /is not a CIDR/],
    ['2001:db8::/32', /'2001:db8::\/32': only IPv4 CIDRs can be denied/],
  ];
  for (const [arg, msg] of bad) t.throws(() => parseDenyCidr(arg), { name: 'PrefilterInputError', message: msg }, arg || '(empty)');
  t.throws(() => parseDenyCidr(42), { message: /42 is not a CIDR: expected a string/ });
  t.throws(() => parseDenyCidr(null), { message: /null is not a CIDR/ });
});

t.test('parseDenyCidrs: all validated first, duplicates removed, one error for every bad one', async (t) => {
  t.same(parseDenyCidrs(['10.0.0.0/8', '198.18.0.0/15', '10.0.0.0/8', ' 10.0.0.0/8']), ['10.0.0.0/8', '198.18.0.0/15']);
  t.throws(() => parseDenyCidrs(['10.0.0.0/8', '10.0.0.1/8']), { message: /^'10\.0\.0\.1\/8' has host bits set: did you mean 10\.0\.0\.0\/8\?; nothing was changed$/ });
  t.throws(() => parseDenyCidrs(['x', '10.0.0.0/8', 'y/3']), { message: /^2 bad CIDRs, nothing was changed: 'x' is not a CIDR.*; 'y\/3' is not a CIDR/ });
  t.throws(() => parseDenyCidrs([]), { message: /give at least one CIDR/ });
  t.throws(() => parseDenyCidrs(undefined), PrefilterInputError);
  t.throws(() => parseDenyCidrs('10.0.0.0/8'), { message: /give at least one CIDR/ }, 'a string is not a list');
});

t.test('store keys and records', async (t) => {
  t.equal(prefilterKey('198.18.77.0/24'), 'prefilter/198.18.77.0-24');
  t.equal(cidrOfKey('prefilter/198.18.77.0-24'), '198.18.77.0/24');
  t.equal(cidrOfKey('prefilter/0.0.0.0-0'), '0.0.0.0/0');
  for (const k of ['prefilter/198.18.77.1-24', 'prefilter/junk', 'prefilter/1.2.3.4-33', 'other/1.2.3.0-24', PREFILTER_NEXT_ID_KEY]) {
    t.equal(cidrOfKey(k), undefined, `${k} is not a rule key`);
  }
  const e: PrefilterEntry = { cidr: '198.18.77.0/24', id: 3, added: '2025-01-01T00:00:00.000Z' };
  t.same(parseEntry(prefilterKey(e.cidr), JSON.stringify(e)), e);
  t.same(parseEntry(prefilterKey(e.cidr), JSON.stringify({ cidr: e.cidr, id: 3 })), { ...e, added: '' }, 'added is optional');
  t.equal(parseEntry(prefilterKey(e.cidr), '{"cidr":"198.18.77.0/24","id":0}'), undefined, 'id 0 is invalid');
  t.equal(parseEntry(prefilterKey(e.cidr), '{"cidr":"198.18.78.0/24","id":3}'), undefined, 'the value must name the key\'s CIDR');
  t.equal(parseEntry(prefilterKey(e.cidr), '{"cidr":"198.18.77.0/24","id":1.5}'), undefined);
  t.equal(parseEntry(prefilterKey(e.cidr), '{"cidr":"198.18.77.0/24","id":4294967296}'), undefined, 'ids are u32');
  t.equal(parseEntry(prefilterKey(e.cidr), 'not json'), undefined);
  t.equal(parseEntry(prefilterKey(e.cidr), 'null'), undefined);
});

t.test('compareCidrs sorts by address, then length', async (t) => {
  t.same(['10.0.0.0/16', '9.0.0.0/8', '10.0.0.0/8', '192.168.0.0/16', '10.0.1.0/24'].sort(compareCidrs),
    ['9.0.0.0/8', '10.0.0.0/8', '10.0.0.0/16', '10.0.1.0/24', '192.168.0.0/16']);
});

const E = (cidr: string, id: number): PrefilterEntry => ({ cidr, id, added: '' });

t.test('diffRules: what makes the map equal to the store', async (t) => {
  const have = new Map<string, MapRule>([
    ['10.0.0.0/8', { id: 1, flags: 0 }],
    ['10.1.0.0/16', { id: 2, flags: 0 }],
    ['192.168.0.0/16', { id: 9, flags: 0 }],
    ['172.16.0.0/12', { id: 4, flags: 1 }],
  ]);
  const want = [E('10.0.0.0/8', 1), E('10.1.0.0/16', 5), E('198.18.0.0/15', 6), E('172.16.0.0/12', 4), E('1.0.0.0/8', 7)];
  const d = diffRules(want, have, [1, 2, 5, 9, 77]);
  t.same(d.add, [['1.0.0.0/8', { id: 7, flags: 0 }], ['198.18.0.0/15', { id: 6, flags: 0 }]], 'missing rules, sorted');
  t.same(d.update, [['10.1.0.0/16', { id: 5, flags: 0 }], ['172.16.0.0/12', { id: 4, flags: 0 }]], 'a different id or flags is rewritten');
  t.same(d.del, ['192.168.0.0/16'], 'rules the store does not have');
  t.same(d.staleCounters, [2, 9, 77], 'counters of ids no wanted rule has');
  t.same(describeDiff(d), [
    'denied 1.0.0.0/8 (rule 7)', 'denied 198.18.0.0/15 (rule 6)', 'rewrote 10.1.0.0/16 (rule 5)', 'rewrote 172.16.0.0/12 (rule 4)',
    'removed 192.168.0.0/16', 'dropped counters of removed rule(s) 2, 9, 77',
  ]);
  const same = diffRules(want, new Map(want.map((e) => [e.cidr, { id: e.id, flags: 0 }])), want.map((e) => e.id));
  t.same([same.add, same.update, same.del, same.staleCounters], [[], [], [], []], 'equal: nothing to do');
  t.same(describeDiff(same), []);
  const empty = diffRules([], have);
  t.same(empty.del, ['10.0.0.0/8', '10.1.0.0/16', '172.16.0.0/12', '192.168.0.0/16'], 'an empty store empties the map');
});

t.test('matchRule: longest prefix wins', async (t) => {
  const rules = [E('10.99.0.0/16', 1), E('10.99.5.5/32', 2), E('10.99.5.0/24', 3), E('0.0.0.0/0', 4), E('198.18.77.0/24', 5)];
  t.equal(matchRule(rules, '10.99.5.5')?.id, 2);
  t.equal(matchRule(rules, '10.99.5.6')?.id, 3);
  t.equal(matchRule(rules, '10.99.6.1')?.id, 1);
  t.equal(matchRule(rules, '198.18.77.255')?.id, 5);
  t.equal(matchRule(rules, '8.8.8.8')?.id, 4);
  t.equal(matchRule(rules.slice(0, 3), '8.8.8.8'), undefined);
  t.equal(matchRule([], '8.8.8.8'), undefined);
});

function fileStore(t: { teardown(fn: () => unknown): void }): Store {
  const s = new FileStore(tempDir(t as Parameters<typeof tempDir>[0], 'sluice-pf'));
  t.teardown(() => s.close());
  return s;
}

t.test('store: add is all-or-nothing per request, idempotent, with ids never reused', async (t) => {
  const store = fileStore(t);
  const now = () => new Date('2025-03-04T05:06:07.000Z');
  const a = await addEntries(store, ['198.18.77.0/24', '10.0.0.0/8'], now);
  t.same(a.added, [E('198.18.77.0/24', 1), E('10.0.0.0/8', 2)].map((e) => ({ ...e, added: '2025-03-04T05:06:07.000Z' })));
  t.same(a.existing, []);
  const again = await addEntries(store, ['10.0.0.0/8', '192.168.0.0/16'], now);
  t.same(again.added.map((e) => [e.cidr, e.id]), [['192.168.0.0/16', 3]], 'only the new one is added');
  t.same(again.existing.map((e) => [e.cidr, e.id]), [['10.0.0.0/8', 2]], 'the existing one is reported, unchanged');
  const noop = await addEntries(store, ['10.0.0.0/8']);
  t.same([noop.added, noop.existing.map((e) => e.id)], [[], [2]]);
  t.equal((await store.get(PREFILTER_NEXT_ID_KEY))?.value, '3', 'an add with nothing new leaves the counter alone');
  t.same((await listEntries(store)).map((e) => [e.cidr, e.id]), [['10.0.0.0/8', 2], ['192.168.0.0/16', 3], ['198.18.77.0/24', 1]], 'listed by address');

  const d = await deleteEntries(store, ['10.0.0.0/8', '1.0.0.0/8']);
  t.same(d.deleted.map((e) => [e.cidr, e.id]), [['10.0.0.0/8', 2]]);
  t.same(d.absent, ['1.0.0.0/8']);
  const none = await deleteEntries(store, ['10.0.0.0/8']);
  t.same([none.deleted, none.absent], [[], ['10.0.0.0/8']], 'deleting twice is a no-op');
  const re = await addEntries(store, ['10.0.0.0/8']);
  t.same(re.added.map((e) => e.id), [4], 'a re-added CIDR gets a new id: its counters start from zero');
});

t.test('store: the id counter lost or behind is never trusted over the ids in use', async (t) => {
  const store = fileStore(t);
  await addEntries(store, ['10.0.0.0/8', '11.0.0.0/8']);
  await store.delete(PREFILTER_NEXT_ID_KEY);
  t.same((await addEntries(store, ['12.0.0.0/8'])).added.map((e) => e.id), [3]);
  await store.put(PREFILTER_NEXT_ID_KEY, 'garbage');
  t.same((await addEntries(store, ['13.0.0.0/8'])).added.map((e) => e.id), [4]);
  await store.put('prefilter/junk', 'x');
  await store.put('prefilter/14.0.0.0-8', '{"cidr":"15.0.0.0/8","id":9}');
  t.same((await listEntries(store)).map((e) => e.cidr), ['10.0.0.0/8', '11.0.0.0/8', '12.0.0.0/8', '13.0.0.0/8'], 'invalid records are skipped');
  t.same((await deleteEntries(store, ['14.0.0.0/8'])).deleted.map((e) => e.cidr), ['14.0.0.0/8'], 'an invalid record can still be deleted');
});

t.test('store: concurrent adds from two clients get distinct ids; a transaction that loses is retried', async (t) => {
  const dir = tempDir(t, 'sluice-pf');
  const a = new FileStore(dir);
  const b = new FileStore(dir);
  t.teardown(async () => {
    await a.close();
    await b.close();
  });
  const results = await Promise.all([
    ...Array.from({ length: 8 }, (_, i) => addEntries(a, [`10.${i}.0.0/16`])),
    ...Array.from({ length: 8 }, (_, i) => addEntries(b, [`11.${i}.0.0/16`, '12.0.0.0/8'])),
  ]);
  const entries = await listEntries(a);
  t.equal(entries.length, 17, 'every CIDR stored once');
  const ids = entries.map((e) => e.id);
  t.equal(new Set(ids).size, ids.length, 'ids are distinct');
  t.equal(results.flatMap((r) => r.added).filter((e) => e.cidr === '12.0.0.0/8').length, 1, 'the shared CIDR was added by exactly one request');
});
