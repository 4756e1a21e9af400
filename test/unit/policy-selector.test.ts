import t from 'tap';
import { formatSelector, isEmptySelector, matchesRequirement, matchesSelector } from '../../src/policy/selector.js';
import type { LabelSelector } from '../../src/policy/types.js';

const web = { app: 'web', tier: 'front', empty: '' };

t.test('the empty selector matches everything, including no labels', async (t) => {
  t.equal(matchesSelector({}, {}), true);
  t.equal(matchesSelector({}, web), true);
  t.equal(matchesSelector({ matchLabels: {}, matchExpressions: [] }, web), true, 'empty lists are still empty');
  t.equal(isEmptySelector({}), true);
  t.equal(isEmptySelector({ matchLabels: {}, matchExpressions: [] }), true);
  t.equal(isEmptySelector({ matchLabels: { a: 'b' } }), false);
});

t.test('matchLabels: every pair must be present with the same value', async (t) => {
  t.equal(matchesSelector({ matchLabels: { app: 'web' } }, web), true);
  t.equal(matchesSelector({ matchLabels: { app: 'web', tier: 'front' } }, web), true);
  t.equal(matchesSelector({ matchLabels: { app: 'web', tier: 'back' } }, web), false, 'one pair differs');
  t.equal(matchesSelector({ matchLabels: { app: 'db' } }, web), false);
  t.equal(matchesSelector({ matchLabels: { missing: '' } }, web), false, 'an absent key is not the empty value');
  t.equal(matchesSelector({ matchLabels: { empty: '' } }, web), true, 'a present empty value matches the empty value');
  t.equal(matchesSelector({ matchLabels: { app: 'Web' } }, web), false, 'values are case-sensitive');
  t.equal(matchesSelector({ matchLabels: { toString: 'x' } }, {}), false, 'inherited object properties are not labels');
});

t.test('operators', async (t) => {
  const cases: [string, LabelSelector, boolean][] = [
    ['In, value listed', { matchExpressions: [{ key: 'app', operator: 'In', values: ['db', 'web'] }] }, true],
    ['In, value not listed', { matchExpressions: [{ key: 'app', operator: 'In', values: ['db'] }] }, false],
    ['In, key absent', { matchExpressions: [{ key: 'role', operator: 'In', values: ['db'] }] }, false],
    ['In, empty value listed', { matchExpressions: [{ key: 'empty', operator: 'In', values: [''] }] }, true],
    ['NotIn, value listed', { matchExpressions: [{ key: 'app', operator: 'NotIn', values: ['web'] }] }, false],
    ['NotIn, value not listed', { matchExpressions: [{ key: 'app', operator: 'NotIn', values: ['db'] }] }, true],
    ['NotIn, key absent matches', { matchExpressions: [{ key: 'role', operator: 'NotIn', values: ['db'] }] }, true],
    ['Exists, present', { matchExpressions: [{ key: 'tier', operator: 'Exists' }] }, true],
    ['Exists, present with empty value', { matchExpressions: [{ key: 'empty', operator: 'Exists' }] }, true],
    ['Exists, absent', { matchExpressions: [{ key: 'role', operator: 'Exists' }] }, false],
    ['DoesNotExist, absent', { matchExpressions: [{ key: 'role', operator: 'DoesNotExist' }] }, true],
    ['DoesNotExist, present', { matchExpressions: [{ key: 'app', operator: 'DoesNotExist' }] }, false],
    ['DoesNotExist, present with empty value', { matchExpressions: [{ key: 'empty', operator: 'DoesNotExist' }] }, false],
  ];
  for (const [name, sel, want] of cases) t.equal(matchesSelector(sel, web), want, name);
});

t.test('matchLabels and matchExpressions are ANDed, and so are expressions', async (t) => {
  const both: LabelSelector = { matchLabels: { app: 'web' }, matchExpressions: [{ key: 'tier', operator: 'In', values: ['front'] }] };
  t.equal(matchesSelector(both, web), true);
  t.equal(matchesSelector(both, { app: 'web', tier: 'back' }), false, 'expression fails');
  t.equal(matchesSelector(both, { app: 'db', tier: 'front' }), false, 'matchLabels fails');
  const two: LabelSelector = { matchExpressions: [{ key: 'app', operator: 'Exists' }, { key: 'canary', operator: 'DoesNotExist' }] };
  t.equal(matchesSelector(two, web), true);
  t.equal(matchesSelector(two, { ...web, canary: 'true' }), false);
  const contradiction: LabelSelector = { matchLabels: { app: 'web' }, matchExpressions: [{ key: 'app', operator: 'NotIn', values: ['web'] }] };
  t.equal(matchesSelector(contradiction, web), false, 'a contradictory selector matches nothing');
  t.equal(matchesSelector(contradiction, {}), false);
});

t.test('requirements the API rejects throw instead of guessing', async (t) => {
  t.throws(() => matchesRequirement({ key: 'a', operator: 'In', values: [] }, {}), { message: "selector requirement on 'a': operator In needs at least one value" });
  t.throws(() => matchesRequirement({ key: 'a', operator: 'NotIn' }, {}), { message: "selector requirement on 'a': operator NotIn needs at least one value" });
  t.throws(() => matchesRequirement({ key: 'a', operator: 'Exists', values: ['x'] }, {}), { message: "selector requirement on 'a': operator Exists takes no values" });
  t.throws(() => matchesRequirement({ key: 'a', operator: 'in' as 'In', values: ['x'] }, {}), { message: `selector requirement on 'a': unknown operator "in"` });
});

t.test('formatSelector uses kubectl notation', async (t) => {
  t.equal(formatSelector({}), '{}');
  t.equal(
    formatSelector({
      matchLabels: { tier: 'front', app: 'web' },
      matchExpressions: [
        { key: 'env', operator: 'In', values: ['staging', 'prod'] },
        { key: 'team', operator: 'NotIn', values: ['x'] },
        { key: 'debug', operator: 'Exists' },
        { key: 'canary', operator: 'DoesNotExist' },
      ],
    }),
    'app=web,tier=front,env in (prod,staging),team notin (x),debug,!canary',
  );
});
