import t from 'tap';
import { formatLabels, parseLabels } from '../../src/util/labels.js';

t.test('parses k=v lists in one or several arguments', async (t) => {
  t.same(parseLabels('app=web,tier=front'), { app: 'web', tier: 'front' });
  t.same(parseLabels(['app=web', 'example.com/team=blue']), { app: 'web', 'example.com/team': 'blue' });
  t.same(parseLabels('empty='), { empty: '' }, 'empty values are valid');
  t.same(parseLabels(''), {});
  t.equal(formatLabels({ b: '2', a: '1' }), 'a=1,b=2');
});

t.test('rejects invalid labels naming them', async (t) => {
  t.throws(() => parseLabels('noequals'), { message: /label 'noequals' is not of the form key=value/ });
  t.throws(() => parseLabels('=v'), { message: /not of the form key=value/ });
  t.throws(() => parseLabels('-bad=v'), { message: /label key '-bad'/ });
  t.throws(() => parseLabels(`${'k'.repeat(64)}=v`), { message: /label key/ });
  t.throws(() => parseLabels('UPPER.Prefix/k=v'), { message: /prefix must be a DNS subdomain/ });
  t.throws(() => parseLabels('k=bad value'), { message: /label 'k': value 'bad value'/ });
  t.throws(() => parseLabels(`k=${'v'.repeat(64)}`), { message: /label 'k': value/ });
});
