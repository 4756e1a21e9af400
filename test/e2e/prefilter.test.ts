/**
 * The XDP prefilter end to end: a test node whose uplink `up0` is a veth to an "outside"
 * namespace holding addresses in 198.18.0.0/15 (the benchmarking range: no clash with any
 * real network), a real agent, and real pings from the outside to the node. Checks that
 * `sluice prefilter add` drops a denied source (and counts it per CIDR) while another
 * source still gets replies, `del` restores it, bad input changes nothing, the program
 * shows in `bpftool net`, it outlives a SIGKILLed agent (the CLI then works on its own),
 * the agent repairs a detached program and follows the store, and `node reset` detaches.
 *
 * Runs the compiled CLI (dist/): build first. Only the test's namespaces are touched.
 */
import t from 'tap';
import { join } from 'node:path';
import { FileStore } from '../../src/store/file.js';
import { addEntries } from '../../src/prefilter/store.js';
import type { PrefilterList } from '../../src/prefilter/service.js';
import { IS_ROOT, inNetns, mustSh, netns, setupGate, testNode, uniquePrefix, type TestNode } from '../helpers/env.js';
import { agentProcess, type AgentProcess } from '../helpers/agent.js';
import { ping } from '../helpers/traffic.js';

if (!IS_ROOT) {
  t.plan(0, 'needs root (network namespaces, BPF)');
  process.exit(0);
}

const prefix = uniquePrefix('pf');
const NODE_IP = '198.18.0.1';
const DENIED_SRC = '198.18.77.5';
const OTHER_SRC = '198.18.99.5';
/** An echo request as ping sends it by default: 14 + 20 + 8 + 56 bytes. */
const PING_FRAME = 98;

let node: TestNode;
let agent: AgentProcess;
let outside: string;
const gate = setupGate(t);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

const list = () => node.json<PrefilterList>(['prefilter', 'list']);
const row = (cidr: string) => list().entries.find((e) => e.cidr === cidr);
const pingFrom = (source: string, count = 3) => ping(outside, NODE_IP, { source, count, waitS: 1 });

/** `bpftool net show dev up0` in the node's namespace. */
function bpftoolNet(): string {
  return inNetns(node.ns, 'bpftool', ['net', 'show', 'dev', 'up0']).stdout;
}

async function until(what: string, fn: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

t.test('setup: a node with uplink up0, an outside namespace, the agent', async () => {
  node = testNode(t, prefix, { uplink: 'up0' });
  outside = netns(t, `${prefix}-out`);
  mustSh('ip', ['-n', node.ns, 'link', 'add', 'up0', 'type', 'veth', 'peer', 'name', 'out0', 'netns', outside]);
  mustSh('ip', ['-n', node.ns, 'addr', 'add', `${NODE_IP}/15`, 'dev', 'up0']);
  mustSh('ip', ['-n', node.ns, 'link', 'set', 'up0', 'up']);
  for (const a of ['198.18.0.2', DENIED_SRC, OTHER_SRC]) mustSh('ip', ['-n', outside, 'addr', 'add', `${a}/15`, 'dev', 'out0']);
  mustSh('ip', ['-n', outside, 'link', 'set', 'out0', 'up']);
  agent = agentProcess(t, node);
  await agent.start();
  gate.done();
});

gate.step('with nothing to filter the agent keeps XDP off the uplink', async (t) => {
  const l = list();
  t.match(l, { node: node.name, uplink: 'up0', attachment: null, entries: [] });
  t.notMatch(bpftoolNet(), /up0\(\d+\)/, 'bpftool net: no XDP program on up0');
  t.match(node.must(['prefilter', 'list']), /^xdp_prefilter is not attached to up0 \(nothing to filter: it attaches with the first denied CIDR\)\nCIDR\s+RULE\s+PACKETS\s+BYTES\s+ACTIVE\s+ADDED\n$/);
  t.equal((await pingFrom(DENIED_SRC)).status, 0, `${DENIED_SRC} gets replies before any rule`);
  t.equal((await pingFrom(OTHER_SRC)).status, 0, `${OTHER_SRC} gets replies`);
});

gate.step('add: the denied source is dropped and counted per CIDR, the other still gets replies', async (t) => {
  t.equal(node.must(['prefilter', 'add', '198.18.77.0/24']), 'denied 198.18.77.0/24 (rule 1)\n');
  const l = list();
  t.match(l, { attachment: { device: 'up0', mode: 'driver' } }, 'the first denied CIDR attaches xdp_prefilter in driver mode');
  t.match(bpftoolNet(), new RegExp(`xdp:\\s*\\n\\s*up0\\(\\d+\\) driver id ${l.attachment!.programId}`), 'bpftool net shows it');
  t.match(agent.log(), /prefilter: attached xdp_prefilter to up0 in driver mode/);
  const r = await pingFrom(DENIED_SRC);
  t.not(r.status, 0, `${DENIED_SRC} gets no reply`);
  t.match(r.stdout, /3 packets transmitted, 0 received/);
  t.equal((await pingFrom(OTHER_SRC)).status, 0, `${OTHER_SRC} still gets replies`);
  t.match(row('198.18.77.0/24'), { id: 1, packets: 3, bytes: 3 * PING_FRAME, active: true }, 'the three echo requests are counted under the /24');
  t.match(node.must(['prefilter', 'list']), /198\.18\.77\.0\/24\s+1\s+3\s+294\s+yes\s+\d{4}-/);
  t.equal(node.must(['prefilter', 'add', '198.18.77.0/24']), '198.18.77.0/24 was already denied (rule 1): unchanged\n', 'adding again is fine and says so');
  const added = row('198.18.77.0/24')!.added;
  t.same(node.json(['prefilter', 'add', '198.18.77.0/24']), { added: [], existing: [{ cidr: '198.18.77.0/24', id: 1, added }] });
});

gate.step('a longer prefix inside a denied one counts on its own', async (t) => {
  node.must(['prefilter', 'add', '198.18.77.5/32']);
  t.not((await pingFrom(DENIED_SRC, 2)).status, 0);
  t.match(row('198.18.77.5/32'), { packets: 2, bytes: 2 * PING_FRAME });
  t.match(row('198.18.77.0/24'), { packets: 3 }, 'the /24 did not count them');
  t.equal(node.must(['prefilter', 'del', '198.18.77.5/32']), 'removed 198.18.77.5/32 (rule 2)\n');
});

gate.step('bad CIDRs: a clear error naming each, and nothing changes', async (t) => {
  const before = list().entries;
  const r = node.sluice(['prefilter', 'add', '198.18.78.0/24', '198.18.77.1/24']);
  t.equal(r.status, 1);
  t.match(r.stderr, /sluice: error: '198\.18\.77\.1\/24' has host bits set: did you mean 198\.18\.77\.0\/24\?; nothing was changed/);
  const r2 = node.sluice(['prefilter', 'add', 'banana', '10.0.0.0/33']);
  t.equal(r2.status, 1);
  t.match(r2.stderr, /2 bad CIDRs, nothing was changed: 'banana' is not a CIDR.*'10\.0\.0\.0\/33': prefix length 33 is above 32/);
  const r3 = node.sluice(['prefilter', 'del', '198.18.77.0']);
  t.equal(r3.status, 1);
  t.match(r3.stderr, /'198\.18\.77\.0' is not a CIDR .*for one address write 198\.18\.77\.0\/32/);
  await t.rejects(agent.post('/v1/prefilter/add', { cidrs: ['198.18.78.0/24', 'x'] }), { status: 400, code: 'invalid_request', message: /'x' is not a CIDR/ });
  await t.rejects(agent.post('/v1/prefilter/add', { cidrs: '198.18.78.0/24' }), { status: 400, code: 'invalid_request', message: /give at least one CIDR/ });
  t.same(list().entries, before, 'no rule was added');
  t.equal((await pingFrom(OTHER_SRC, 1)).status, 0);
});

gate.step('the agent repairs a detached program and a lost map entry', async (t) => {
  const pin = join(node.pinRoot, 'xdp', 'up0');
  mustSh('bpftool', ['link', 'detach', 'pinned', pin]);
  t.notMatch(bpftoolNet(), /xdp:\s*\n\s*up0/, 'detached');
  mustSh('bpftool', ['map', 'delete', 'pinned', join(node.pinRoot, 'sl_prefilter'), 'key', '24', '0', '0', '0', '198', '18', '77', '0']);
  t.equal((await pingFrom(DENIED_SRC, 1)).status, 0, 'the denied source got through meanwhile');
  const r = await agent.post<{ features: { prefilter: { changed: string[]; problems: string[] } } }>('/v1/reconcile');
  t.match(r.features.prefilter.changed, [/attached xdp_prefilter to up0 in driver mode/, /sl_prefilter: denied 198\.18\.77\.0\/24 \(rule 1\)/]);
  t.same(r.features.prefilter.problems, []);
  t.not((await pingFrom(DENIED_SRC, 1)).status, 0, 'dropped again');
  t.match(row('198.18.77.0/24'), { packets: 4 }, 'the counters survived the repair');
  const again = await agent.post<{ features: { prefilter: { changed: string[] } } }>('/v1/reconcile');
  t.same(again.features.prefilter.changed, [], 'a second pass changes nothing');
});

gate.step('the agent follows the store: a rule written by someone else is applied', async (t) => {
  const store = new FileStore(join(node.stateDir, 'store'));
  try {
    await addEntries(store, ['198.18.99.0/24']);
  } finally {
    await store.close();
  }
  await until('198.18.99.0/24 in sl_prefilter', () => row('198.18.99.0/24')?.active === true);
  t.not((await pingFrom(OTHER_SRC, 1)).status, 0, `${OTHER_SRC} is dropped now`);
  node.must(['prefilter', 'del', '198.18.99.0/24']);
  t.equal((await pingFrom(OTHER_SRC, 1)).status, 0, 'and gets replies again');
});

gate.step('SIGKILL of the agent leaves filtering in place; without an agent the CLI works on its own', async (t) => {
  const id = list().attachment!.programId;
  t.equal((await agent.kill('SIGKILL')).signal, 'SIGKILL');
  t.not((await pingFrom(DENIED_SRC)).status, 0, 'still dropped with no agent');
  t.equal((await pingFrom(OTHER_SRC)).status, 0, 'the other source still gets replies');
  t.match(bpftoolNet(), new RegExp(`up0\\(\\d+\\) driver id ${id}`), 'still attached');
  t.match(row('198.18.77.0/24'), { packets: 7 }, 'list works without the agent and counts what was dropped meanwhile');

  const add = node.sluice(['prefilter', 'add', '198.18.99.0/24']);
  t.equal(add.status, 0, add.stderr);
  t.match(add.stderr, /no sluice agent runs: changed the store and this node's sl_prefilter directly/);
  t.not((await pingFrom(OTHER_SRC, 1)).status, 0, 'a rule added without the agent takes effect');

  await agent.start();
  t.match(agent.log(10), /prefilter: xdp_prefilter on up0 in driver mode, 2 denied CIDR\(s\)/);
  const l = list();
  t.equal(l.attachment!.programId, id, 'the restarted agent kept the program (no re-attach)');
  t.same(l.entries.map((e) => [e.cidr, e.active]), [['198.18.77.0/24', true], ['198.18.99.0/24', true]]);
  node.must(['prefilter', 'del', '198.18.99.0/24']);
  t.equal((await pingFrom(OTHER_SRC, 1)).status, 0);
});

gate.step('del restores the traffic; deleting again says so', async (t) => {
  const added = row('198.18.77.0/24')!.added;
  t.same(node.json(['prefilter', 'del', '198.18.77.0/24']), { deleted: [{ cidr: '198.18.77.0/24', id: 1, added }], absent: [] });
  t.equal((await pingFrom(DENIED_SRC)).status, 0, `${DENIED_SRC} gets replies again`);
  t.same(list().entries, []);
  t.notMatch(bpftoolNet(), /up0\(\d+\)/, 'the last rule gone, XDP is off the uplink again');
  t.equal(node.must(['prefilter', 'del', '198.18.77.0/24']), '198.18.77.0/24 was not denied: unchanged\n');
  const ct = JSON.parse(mustSh('bpftool', ['-j', 'map', 'dump', 'pinned', join(node.pinRoot, 'sl_prefilter_ct')])) as unknown[];
  t.same(ct, [], 'no counters left behind');
});

gate.step('metrics: dropped packets by CIDR', async (t) => {
  node.must(['prefilter', 'add', '198.18.77.0/24']);
  await pingFrom(DENIED_SRC, 2);
  const r = inNetns(node.ns, process.execPath, ['-e',
    "fetch('http://127.0.0.1:9962/metrics').then((r) => r.text()).then((b) => process.stdout.write(b), (e) => { console.error(String(e)); process.exit(1); })"]);
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /\nsluice_prefilter_packets_total\{cidr="198\.18\.77\.0\/24"\} 2\n/);
  t.match(r.stdout, /\nsluice_prefilter_bytes_total\{cidr="198\.18\.77\.0\/24"\} 196\n/);
});

gate.step('SIGTERM leaves it attached; node reset detaches it', async (t) => {
  const r = await agent.kill('SIGTERM');
  t.equal(r.code, 0);
  t.not((await pingFrom(DENIED_SRC, 1)).status, 0, 'still dropped after a clean stop');
  t.match(bpftoolNet(), /xdp:\s*\n\s*up0\(\d+\) driver id \d+/);
  node.must(['node', 'reset']);
  t.notMatch(bpftoolNet(), /up0\(\d+\)/, 'no XDP program on up0 after node reset');
  t.equal((await pingFrom(DENIED_SRC, 1)).status, 0, 'traffic flows again');
});
