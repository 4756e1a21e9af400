/**
 * When a feature compiles, reads back or leaves alone a map it keeps in sync
 * (src/agent/map-sync.ts), with a fake clock.
 */
import t from 'tap';
import { MapSync, type MapState, type SyncAction } from '../../src/agent/map-sync.js';

const MIN = 60_000;

function clock(start = 1_000_000) {
  let now = start;
  return { now: () => now, advance: (ms: number) => void (now += ms) };
}

const state = (memlock = 4400, id = 7): MapState => ({ id, memlock });

t.test('apply on the first pass and on changed inputs, skip while nothing changed', async (t) => {
  const c = clock();
  const s = new MapSync('sl_policy', 5 * MIN, c.now);
  t.same(s.decide('A', state(), false), { action: 'apply', reason: 'no earlier pass succeeded' });
  s.done('A', state(), `entries A`);
  t.same(s.decide('A', state(), false), { action: 'skip', reason: 'inputs unchanged' });
  c.advance(30_000);
  t.equal(s.decide('A', state(), false).action, 'skip', 'still unchanged 30 s later');
  t.same(s.decide('B', state(), false), { action: 'apply', reason: 'inputs changed' });
  t.equal(s.decide('B', state(), true).action, 'apply', 'changed inputs apply even when a drift check is asked for');
  s.done('B', state(4444), `entries B`);
  t.equal(s.decide('B', state(4444), false).action, 'skip');
});

t.test('wanted(): what the last good pass made the map equal to, for a verify to repair against', async (t) => {
  const c = clock();
  const s = new MapSync<string>('sl_policy', 0, c.now);
  t.equal(s.wanted(), undefined, 'nothing before a pass succeeded');
  s.done('A', state(), 'entries A');
  t.same([s.decide('A', state(), false).action, s.wanted()], ['verify', 'entries A'], 'a verify has the entries to repair against');
  s.done('B', state(), 'entries B');
  t.equal(s.wanted(), 'entries B');
  s.failed();
  t.equal(s.wanted(), undefined, 'forgotten with the pass');
});

t.test('a failed pass records nothing: the next one applies again', async (t) => {
  const c = clock();
  const s = new MapSync('sl_policy', 5 * MIN, c.now);
  s.done('A', state(), `entries A`);
  // Inputs changed to B, the write failed: the feature does not call done().
  t.equal(s.decide('B', state(), false).action, 'apply');
  t.equal(s.decide('B', state(), false).action, 'apply', 'B is tried again, not skipped');
  // A failure after a good pass with the same inputs (a read-back that threw).
  s.done('B', state(), `entries B`);
  s.failed();
  t.same(s.decide('B', state(), false), { action: 'apply', reason: 'no earlier pass succeeded' }, 'failed() forgets the last pass');
});

t.test('verify: asked for, the map replaced or resized behind the agent, its state unknown', async (t) => {
  const c = clock();
  const s = new MapSync('sl_policy', 5 * MIN, c.now);
  s.done('A', state(4400, 7), `entries A`);
  t.same(s.decide('A', state(4400, 7), true), { action: 'verify', reason: 'drift check requested' });
  t.same(s.decide('A', state(4356, 7), false), {
    action: 'verify', reason: "sl_policy changed behind the agent's back (kernel memory 4400 bytes after the agent's last write, now 4356)",
  }, 'an entry deleted (Linux 6.4+: memlock follows the entries)');
  t.same(s.decide('A', state(4400, 9), false), { action: 'verify', reason: 'sl_policy was replaced (map id 7, now 9)' });
  t.same(s.decide('A', undefined, false), { action: 'verify', reason: 'the state of sl_policy is unknown' });
  s.done('A', undefined, `entries A`);
  t.equal(s.decide('A', state(), false).action, 'verify', 'nor after a pass that could not read it');
  s.done('A', state(4356, 7), `entries A`);
  t.equal(s.decide('A', state(4356, 7), false).action, 'skip', 'after the repair, the new state is the reference');
});

t.test('verify when the last read-back is older than the drift-check interval', async (t) => {
  const c = clock();
  const s = new MapSync('sl_ipcache', 5 * MIN, c.now);
  s.done('A', state(), `entries A`);
  c.advance(5 * MIN - 1);
  t.equal(s.decide('A', state(), false).action, 'skip', 'not yet due');
  c.advance(1);
  t.same(s.decide('A', state(), false), { action: 'verify', reason: 'drift check (last read back 300 s ago)' });
  s.done('A', state(), `entries A`);
  t.equal(s.decide('A', state(), false).action, 'skip', 'a read-back restarts the interval');
  c.advance(4 * MIN);
  s.done('A', state(), `entries A`); // a requested drift check (or an apply) also counts as a read-back
  c.advance(2 * MIN);
  t.equal(s.decide('A', state(), false).action, 'skip', 'due 5 minutes after the last read-back of any kind');
});

t.test('a drift-check interval of 0 reads back at every pass', async (t) => {
  const c = clock();
  const s = new MapSync('sl_policy', 0, c.now);
  s.done('A', state(), `entries A`);
  for (let i = 0; i < 3; i++) {
    t.equal(s.decide('A', state(), false).action, 'verify');
    s.done('A', state(), `entries A`);
  }
  t.throws(() => new MapSync('x', -1), /drift-check interval must be 0 or more/);
  t.throws(() => new MapSync('x', Number.NaN), /drift-check interval must be 0 or more/);
});

t.test('the schedule of an idle agent: a pass every 30 s, a drift check every 5 minutes', async (t) => {
  const c = clock();
  const s = new MapSync('sl_policy', 5 * MIN, c.now);
  const actions: SyncAction[] = [];
  for (let pass = 0; pass < 21; pass++) {
    const d = s.decide('A', state(), false);
    actions.push(d.action);
    if (d.action !== 'skip') s.done('A', state(), `entries A`);
    c.advance(30_000);
  }
  const at = (a: SyncAction) => actions.flatMap((x, i) => (x === a ? [i] : []));
  t.same(at('apply'), [0], 'compiled once');
  t.same(at('verify'), [10, 20], 'read back every 10th pass (300 s)');
  t.equal(at('skip').length, 18, 'every other pass skipped');
});
