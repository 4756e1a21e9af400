/**
 * The node config's nodeNetns: a command runs only in the namespace it names. Namespace
 * files are compared by device and inode, so plain files stand in for them here.
 */
import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { requireNodeNetns, WrongNetnsError } from '../../src/config/netns-guard.js';
import { tempDir, uniquePrefix } from '../helpers/env.js';

const dir = tempDir(t, uniquePrefix('nsg'));
const mine = join(dir, 'mine');
const other = join(dir, 'other');
writeFileSync(mine, '');
writeFileSync(other, '');

t.test('no nodeNetns: anywhere goes', async (t) => {
  t.doesNotThrow(() => requireNodeNetns({ nodeNetns: '', nodeName: 'n1' }, undefined, other));
});

t.test('in the named namespace: fine', async (t) => {
  t.doesNotThrow(() => requireNodeNetns({ nodeNetns: mine, nodeName: 'n1' }, undefined, mine));
});

t.test('elsewhere: refused, with the commands that run it where it belongs', async (t) => {
  const e = t.throws(() => requireNodeNetns({ nodeNetns: mine, nodeName: 'n1' }, '/l/n1.yaml', other)) as unknown as Error;
  t.type(e, WrongNetnsError);
  t.match(e.message, `node n1 lives in network namespace ${mine} (config key nodeNetns) and this command runs in another one`);
  t.match(e.message, `\`nsenter --net=${mine} sluice --config /l/n1.yaml …\``);
  t.match(e.message, '`sluice lab exec [--name LAB] --node n1 -- sluice …`');
});

t.test('a namespace that is gone is named', async (t) => {
  t.throws(() => requireNodeNetns({ nodeNetns: join(dir, 'gone'), nodeName: 'n1' }, undefined, mine),
    { name: 'WrongNetnsError', message: /node n1 lives in network namespace .*gone \(config key nodeNetns\), which does not exist \(ENOENT\); is its lab down\?/ });
});
