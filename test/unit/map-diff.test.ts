/** applyMapDiff: what the agent writes to sl_policy and sl_ipcache, and in which order. No root needed. */
import t from 'tap';
import { applyMapDiff } from '../../src/maps/diff.js';

const same = (a: number, b: number) => a === b;

function run(have: [string, number][], want: [string, number][]) {
  const ops: string[] = [];
  const d = applyMapDiff(new Map(have), new Map(want), same, {
    write: (k, v) => ops.push(`write ${k}=${v}`),
    remove: (k, old) => ops.push(`remove ${k} (was ${old})`),
  });
  return { d, ops };
}

t.test('new, changed, unchanged and stale entries', async (t) => {
  const { d, ops } = run([['a', 1], ['b', 2], ['c', 3]], [['a', 1], ['b', 20], ['d', 4]]);
  t.same(d, { added: ['d'], changed: ['b'], removed: ['c'] });
  t.same(ops, ['write b=20', 'write d=4', 'remove c (was 3)'], 'writes first, removals last; the unchanged entry is not touched');
});

t.test('equal contents: nothing written', async (t) => {
  const { d, ops } = run([['a', 1]], [['a', 1]]);
  t.same(d, { added: [], changed: [], removed: [] });
  t.same(ops, []);
});

t.test('from empty and to empty', async (t) => {
  t.same(run([], [['a', 1], ['b', 2]]).d, { added: ['a', 'b'], changed: [], removed: [] });
  t.same(run([['a', 1], ['b', 2]], []).d, { added: [], changed: [], removed: ['a', 'b'] });
});

t.test('`same` decides what counts as changed', async (t) => {
  const ops: string[] = [];
  const d = applyMapDiff(new Map([['k', { v: 1, seen: 5 }]]), new Map([['k', { v: 1, seen: 9 }]]), (a, b) => a.v === b.v, {
    write: (k) => ops.push(k),
    remove: (k) => ops.push(k),
  });
  t.same(d.changed, [], 'fields outside `same` do not cause a write');
  t.same(ops, []);
});

t.test('a writer that throws stops before any removal', async (t) => {
  const removed: string[] = [];
  t.throws(() => applyMapDiff(new Map([['old', 1]]), new Map([['new', 2]]), same, {
    write: () => { throw new Error('map full'); },
    remove: (k) => removed.push(k),
  }), /map full/);
  t.same(removed, [], 'the stale entry is still there: nothing is left without an entry');
});
