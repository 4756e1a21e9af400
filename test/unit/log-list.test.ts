/** logList (src/agent/log-list.ts): long lists are cut for the log, short ones are whole. */
import t from 'tap';
import { LOG_ITEMS, logList } from '../../src/agent/log-list.js';

t.test('a short list is whole, a long one cut with its count', async (t) => {
  t.equal(logList([]), '');
  t.equal(logList(['a', 'b']), 'a, b');
  const exact = Array.from({ length: LOG_ITEMS }, (_, i) => `x${i}`);
  t.equal(logList(exact), exact.join(', '), `${LOG_ITEMS} items: all of them`);
  const many = Array.from({ length: 50000 }, (_, i) => `ipcache +172.10.${i >> 8}.${i & 255}/32`);
  const line = logList(many);
  t.ok(line.startsWith('ipcache +172.10.0.0/32, ipcache +172.10.0.1/32, '));
  t.ok(line.endsWith(` … and ${50000 - LOG_ITEMS} more (50000 in all)`));
  t.ok(line.length < 1000, `${line.length} characters instead of ${many.join(', ').length}`);
});
