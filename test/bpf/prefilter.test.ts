/**
 * bpf/xdp_prefilter.c through BPF_PROG_TEST_RUN on crafted frames, with the maps set up
 * by the same TypeScript the agent uses (src/prefilter/datapath.ts syncRules), then the
 * XDP attachment (driver mode, generic fallback, link replace, a foreign program left
 * alone) on devices of a throwaway network namespace.
 *
 * Each row: the denied CIDRs, a frame, the verdict, and which rule's counter must move
 * (by 1 packet and the frame's length in bytes) — or that none may.
 */
import t from 'tap';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { BpfObject, type LoadedObject } from '../../src/bpf/object.js';
import { BpfError } from '../../src/bpf/errors.js';
import { testRun } from '../../src/bpf/testrun.js';
import { attachXdp, detachXdp, queryXdp } from '../../src/bpf/xdp.js';
import { libc as c } from '../../src/sys/libc.js';
import { buildProgram } from '../../src/datapath/build.js';
import { nodePins } from '../../src/datapath/pins.js';
import { withNetns } from '../../src/net/netns.js';
import { matchRule, type PrefilterEntry } from '../../src/prefilter/cidr.js';
import { attachPrefilter, detachPrefilter, pinnedDevices, xdpAttachment, xdpLinkPin } from '../../src/prefilter/attach.js';
import { readPrefilterRules as readRules } from '../../src/maps/prefilter.js';
import { readPrefilterCounters as readCounters } from '../../src/maps/prefilter-counters.js';
import { syncRules } from '../../src/prefilter/datapath.js';
import { IS_ROOT, REPO, mustSh, netns, pinRoot, sh, tempDir, uniquePrefix } from '../helpers/env.js';
import * as P from '../helpers/packets.js';

const XDP_DROP = 1;
const XDP_PASS = 2;
const NAMES: Record<number, string> = { 0: 'ABORTED', [XDP_DROP]: 'DROP', [XDP_PASS]: 'PASS' };
const EINVAL = 22;

const MACS = { srcMac: '02:00:00:00:00:01', dstMac: '02:00:00:00:00:02' };
const NODE_IP = '192.168.50.1';

if (!IS_ROOT) {
  t.plan(0, 'needs root (BPF)');
} else {
  const prefix = uniquePrefix('pf');
  const cfg = { pinRoot: pinRoot(t, prefix) };
  const obj = BpfObject.open(buildProgram('xdp_prefilter').object, { pinRoot: cfg.pinRoot });
  t.teardown(() => obj.close());
  const loaded: LoadedObject = obj.load();
  const prog = loaded.program('xdp_prefilter');
  prog.pin(nodePins(cfg).program('xdp_prefilter'));

  let nextId = 100;
  const entry = (cidr: string): PrefilterEntry => ({ cidr, id: nextId++, added: '2025-01-01T00:00:00.000Z' });

  const RULES = {
    denied24: entry('198.18.77.0/24'),
    wide16: entry('10.99.0.0/16'),
    host32: entry('10.99.5.5/32'),
    mid24: entry('10.99.7.0/24'),
  };
  const ALL = Object.values(RULES);

  /** Runs the program; EINVAL (the kernel refused the frame before the program ran) is returned as -EINVAL. */
  function run(frame: Buffer, repeat = 1): number {
    try {
      return testRun(prog, { data: frame, repeat }).retval;
    } catch (e) {
      if (e instanceof BpfError && e.errno === EINVAL) return -EINVAL;
      throw e;
    }
  }

  const icmpFrom = (src: string, extra: Partial<P.FrameAddrs> = {}) => P.icmpFrame({ ...MACS, src, dst: NODE_IP, ...extra });

  /** `inner` with VLAN tags (TPIDs outermost first) between the MAC addresses and its ethertype. */
  function tagged(inner: Buffer, tpids: number[]): Buffer {
    const tags = tpids.map((tpid, i) => {
      const b = Buffer.alloc(4);
      b.writeUInt16BE(tpid, 0);
      b.writeUInt16BE(100 + i, 2); // TCI: VLAN id
      return b;
    });
    return Buffer.concat([inner.subarray(0, 12), ...tags, inner.subarray(12)]);
  }

  interface Row {
    name: string;
    frame: Buffer;
    verdict: number;
    /** The rule whose counter moves by one frame; null: no counter moves. */
    counts: PrefilterEntry | null;
  }

  const ipv6Frame = P.ethernet({ dst: MACS.dstMac, src: MACS.srcMac, type: P.ETH_P_IPV6 }, Buffer.alloc(60, 0x60));
  const rows: Row[] = [
    { name: 'a source inside a denied /24 is dropped', frame: icmpFrom('198.18.77.9'), verdict: XDP_DROP, counts: RULES.denied24 },
    { name: 'the first address of the /24', frame: icmpFrom('198.18.77.0'), verdict: XDP_DROP, counts: RULES.denied24 },
    { name: 'the last address of the /24', frame: icmpFrom('198.18.77.255'), verdict: XDP_DROP, counts: RULES.denied24 },
    { name: 'just outside the /24 passes', frame: icmpFrom('198.18.78.1'), verdict: XDP_PASS, counts: null },
    { name: 'a /32 inside a /16 counts under the /32', frame: icmpFrom('10.99.5.5'), verdict: XDP_DROP, counts: RULES.host32 },
    { name: 'a neighbour of the /32 counts under the /16', frame: icmpFrom('10.99.5.6'), verdict: XDP_DROP, counts: RULES.wide16 },
    { name: 'a /24 inside the /16 counts under the /24', frame: icmpFrom('10.99.7.200'), verdict: XDP_DROP, counts: RULES.mid24 },
    { name: 'UDP from a denied source', frame: P.udpFrame({ ...MACS, src: '10.99.200.1', dst: NODE_IP }, 5000, 53), verdict: XDP_DROP, counts: RULES.wide16 },
    { name: 'TCP SYN from a denied source', frame: P.tcpFrame({ ...MACS, src: '198.18.77.1', dst: NODE_IP }, 40000, 22), verdict: XDP_DROP, counts: RULES.denied24 },
    { name: 'a denied source with IP options', frame: icmpFrom('198.18.77.2', { options: Buffer.from([1, 1, 1, 0]) }), verdict: XDP_DROP, counts: RULES.denied24 },
    {
      name: 'a non-first fragment from a denied source (judged on its source too)',
      frame: P.ethernet({ dst: MACS.dstMac, src: MACS.srcMac, type: P.ETH_P_IP }, P.ipv4({ src: '198.18.77.3', dst: NODE_IP, protocol: P.IPPROTO_UDP, fragOff: 0x00b9 }, Buffer.alloc(64))),
      verdict: XDP_DROP, counts: RULES.denied24,
    },
    { name: 'only the source counts: a denied destination passes', frame: icmpFrom('203.0.113.1', { dst: '198.18.77.9' }), verdict: XDP_PASS, counts: null },
    { name: 'an allowed source passes', frame: icmpFrom('203.0.113.1'), verdict: XDP_PASS, counts: null },
    {
      name: 'ARP from a denied address passes (not IPv4)',
      frame: P.arpFrame({ sha: MACS.srcMac, sip: '198.18.77.9', tip: NODE_IP, pad: true }), verdict: XDP_PASS, counts: null,
    },
    { name: 'IPv6 passes', frame: ipv6Frame, verdict: XDP_PASS, counts: null },
    { name: 'one 802.1Q tag: judged', frame: tagged(icmpFrom('198.18.77.4'), [P.ETH_P_8021Q]), verdict: XDP_DROP, counts: RULES.denied24 },
    { name: 'QinQ (802.1ad + 802.1Q): judged', frame: tagged(icmpFrom('198.18.77.5'), [0x88a8, P.ETH_P_8021Q]), verdict: XDP_DROP, counts: RULES.denied24 },
    { name: 'three tags: passes (deeper than the program looks)', frame: tagged(icmpFrom('198.18.77.6'), [0x88a8, P.ETH_P_8021Q, P.ETH_P_8021Q]), verdict: XDP_PASS, counts: null },
    { name: 'a tagged allowed source passes', frame: tagged(icmpFrom('203.0.113.1'), [P.ETH_P_8021Q]), verdict: XDP_PASS, counts: null },
    {
      name: 'IPv4 ethertype with version 6 in the header: passes (malformed: the stack drops it)',
      frame: P.ethernet({ dst: MACS.dstMac, src: MACS.srcMac, type: P.ETH_P_IP }, P.ipv4({ src: '198.18.77.9', dst: NODE_IP, protocol: 1, version: 6 }, Buffer.alloc(8))),
      verdict: XDP_PASS, counts: null,
    },
    {
      name: 'IHL 4: passes (malformed)',
      frame: P.ethernet({ dst: MACS.dstMac, src: MACS.srcMac, type: P.ETH_P_IP }, P.ipv4({ src: '198.18.77.9', dst: NODE_IP, protocol: 1, ihl: 4 }, Buffer.alloc(8))),
      verdict: XDP_PASS, counts: null,
    },
    { name: 'IPv4 header cut after the source address (19 of 20 bytes): passes', frame: P.truncate(icmpFrom('198.18.77.9'), 14 + 19), verdict: XDP_PASS, counts: null },
    { name: 'IPv4 ethertype with no header at all: passes', frame: P.truncate(icmpFrom('198.18.77.9'), 14), verdict: XDP_PASS, counts: null },
    { name: 'a tag cut short: passes', frame: P.truncate(tagged(icmpFrom('198.18.77.9'), [P.ETH_P_8021Q]), 16), verdict: XDP_PASS, counts: null },
    { name: 'a 20-byte IPv4 header and nothing after it, denied source: dropped', frame: P.truncate(icmpFrom('198.18.77.9'), 14 + 20), verdict: XDP_DROP, counts: RULES.denied24 },
  ];

  t.test('the maps, set up as the agent does', async (t) => {
    const d = syncRules(cfg, ALL);
    t.same(d.add.map(([cidr]) => cidr).sort(), ALL.map((e) => e.cidr).sort(), 'every rule inserted');
    const rules = readRules(cfg);
    t.same(Object.fromEntries(rules), Object.fromEntries(ALL.map((e) => [e.cidr, { id: e.id, flags: 0 }])));
    const again = syncRules(cfg, ALL);
    t.same([again.add, again.update, again.del, again.staleCounters], [[], [], [], []], 'a second sync changes nothing');
    const dump = JSON.parse(mustSh('bpftool', ['-j', 'map', 'dump', 'pinned', join(cfg.pinRoot, 'sl_prefilter')])) as { formatted?: { key: unknown; value: unknown } }[];
    t.match(dump.map((e) => e.formatted), [{ key: { prefixlen: Number, addr: Number }, value: { id: Number, flags: Number } }], 'bpftool prints the fields by name (BTF)');
  });

  for (const row of rows) {
    t.test(row.name, async (t) => {
      const before = readCounters(cfg);
      const verdict = run(row.frame);
      if (verdict === -EINVAL) {
        // The kernel may refuse frames it considers too short before the program runs.
        t.equal(row.verdict, XDP_PASS, 'refused by the kernel (EINVAL): acceptable only for a frame that would pass');
        t.comment(`kernel refused the ${row.frame.length}-byte frame with EINVAL`);
      } else {
        t.equal(NAMES[verdict] ?? verdict, NAMES[row.verdict], `verdict ${NAMES[row.verdict]}`);
      }
      const after = readCounters(cfg);
      for (const e of ALL) {
        const moved = {
          packets: (after.get(e.id)?.packets ?? 0) - (before.get(e.id)?.packets ?? 0),
          bytes: (after.get(e.id)?.bytes ?? 0) - (before.get(e.id)?.bytes ?? 0),
        };
        const want = row.counts?.id === e.id ? { packets: 1, bytes: row.frame.length } : { packets: 0, bytes: 0 };
        t.same(moved, want, `${e.cidr}: +${want.packets} packet(s), +${want.bytes} bytes`);
      }
    });
  }

  t.test('the frame is not modified', async (t) => {
    const f = icmpFrom('203.0.113.1');
    const r = testRun(prog, { data: f });
    t.same(r.data, f);
  });

  t.test('repeat: the counter adds up every run', async (t) => {
    const before = readCounters(cfg).get(RULES.denied24.id) ?? { packets: 0, bytes: 0 };
    const f = icmpFrom('198.18.77.77');
    t.equal(run(f, 1000), XDP_DROP);
    const after = readCounters(cfg).get(RULES.denied24.id)!;
    t.same({ packets: after.packets - before.packets, bytes: after.bytes - before.bytes }, { packets: 1000, bytes: 1000 * f.length });
  });

  t.test('deleting a rule lets its sources through and drops its counters; the covering rule takes over', async (t) => {
    const d = syncRules(cfg, ALL.filter((e) => e !== RULES.host32 && e !== RULES.denied24));
    t.same(d.del.sort(), ['10.99.5.5/32', '198.18.77.0/24']);
    t.same(d.staleCounters.sort(), [RULES.denied24.id, RULES.host32.id].sort(), 'their counters are stale');
    t.equal(run(icmpFrom('198.18.77.9')), XDP_PASS, 'the /24 passes again');
    t.equal(readCounters(cfg).has(RULES.denied24.id), false, 'its counter entry is gone');
    const before = readCounters(cfg).get(RULES.wide16.id)!.packets;
    t.equal(run(icmpFrom('10.99.5.5')), XDP_DROP, 'the former /32 is still inside the /16');
    t.equal(readCounters(cfg).get(RULES.wide16.id)!.packets, before + 1, '...and counts under the /16 now');
    syncRules(cfg, ALL);
  });

  t.test('a rule rewritten with another id counts under the new id', async (t) => {
    const moved = { ...RULES.mid24, id: 999 };
    const d = syncRules(cfg, ALL.map((e) => (e === RULES.mid24 ? moved : e)));
    t.same(d.update.map(([c, r]) => [c, r.id]), [['10.99.7.0/24', 999]]);
    t.equal(run(icmpFrom('10.99.7.1')), XDP_DROP);
    t.equal(readCounters(cfg).get(999)?.packets, 1);
    syncRules(cfg, ALL);
    t.equal(readCounters(cfg).has(999), false);
  });

  t.test('0.0.0.0/0 denies every IPv4 source, and only IPv4', async (t) => {
    const all = entry('0.0.0.0/0');
    syncRules(cfg, [all]);
    t.equal(run(icmpFrom('203.0.113.1')), XDP_DROP);
    t.equal(run(icmpFrom('0.0.0.0')), XDP_DROP);
    t.equal(run(ipv6Frame), XDP_PASS);
    t.equal(readCounters(cfg).get(all.id)?.packets, 2);
    syncRules(cfg, []);
    t.equal(readRules(cfg).size, 0);
    t.equal(readCounters(cfg).size, 0, 'no counters left');
    t.equal(run(icmpFrom('203.0.113.1')), XDP_PASS, 'an empty map passes everything');
    syncRules(cfg, ALL);
  });

  t.test('the datapath agrees with the reference model on random rules and sources', async (t) => {
    let seed = 0x5eed;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const ip = (n: number) => `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
    // Rules nested inside 10.0.0.0/8 so random sources hit several levels.
    const rules = new Map<string, PrefilterEntry>();
    while (rules.size < 60) {
      const len = 8 + rand(25);
      const addr = ((10 << 24) | (rand(1 << 12) << 12) | rand(1 << 12)) >>> 0;
      const base = (addr & (len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0)) >>> 0;
      const cidr = `${ip(base)}/${len}`;
      if (!rules.has(cidr)) rules.set(cidr, entry(cidr));
    }
    const list = [...rules.values()];
    syncRules(cfg, list);
    const mismatches: string[] = [];
    for (let i = 0; i < 400; i++) {
      const src = i % 2 ? ip(((10 << 24) | (rand(1 << 12) << 12) | rand(1 << 12)) >>> 0) : ip((rand(1 << 16) << 16 | rand(1 << 16)) >>> 0);
      const want = matchRule(list, src);
      const before = want ? readCounters(cfg).get(want.id)?.packets ?? 0 : 0;
      const verdict = run(icmpFrom(src));
      const after = want ? readCounters(cfg).get(want.id)?.packets ?? 0 : 0;
      if (verdict !== (want ? XDP_DROP : XDP_PASS) || after !== before + (want ? 1 : 0)) {
        mismatches.push(`${src}: ${NAMES[verdict]}, model ${want ? `drop by ${want.cidr}` : 'pass'}`);
      }
    }
    t.same(mismatches, [], '400 sources, same verdict and counting rule');
    syncRules(cfg, ALL);
  });

  t.test('attach: driver mode on a veth, generic on a bridge, link replaced in place, foreign programs left alone', async (t) => {
    const ns = netns(t, `${prefix}-ns`);
    mustSh('ip', ['-n', ns, 'link', 'add', 'up0', 'type', 'veth', 'peer', 'name', 'up0p']);
    mustSh('ip', ['-n', ns, 'link', 'add', 'br0', 'type', 'bridge']);
    for (const d of ['up0', 'up0p', 'br0']) mustSh('ip', ['-n', ns, 'link', 'set', d, 'up']);
    const fx = BpfObject.open(buildProgram('fx_loader', { srcDir: join(REPO, 'test/fixtures/bpf'), includeDir: join(REPO, 'include'), cacheDir: tempDir(t, uniquePrefix('c')) }).object,
      { pinRoot: pinRoot(t, uniquePrefix('fx')) }); // its maps are pinned by name: never under the machine's own /sys/fs/bpf
    t.teardown(() => fx.close());
    const foreign = fx.load().program('fx_xdp');
    const progId = prog.info().id;

    withNetns(`/run/netns/${ns}`, () => {
      const a = attachPrefilter(cfg, 'up0');
      t.match(a, { device: 'up0', mode: 'driver', programId: progId, action: 'attached' }, 'veth takes driver mode');
      t.ok(existsSync(xdpLinkPin(cfg, 'up0')), 'the link is pinned');
      t.match(sh('bpftool', ['net', 'show', 'dev', 'up0']).stdout, new RegExp(`xdp:\\s*\\n\\s*up0\\(\\d+\\) driver id ${progId}`), 'bpftool net shows it');
      t.match(attachPrefilter(cfg, 'up0'), { action: 'unchanged', mode: 'driver' }, 'attaching again changes nothing');
      t.match(xdpAttachment(cfg, 'up0'), { device: 'up0', mode: 'driver', programId: progId });
      t.not(sh('ip', ['link', 'set', 'dev', 'up0', 'xdp', 'off']).status, 0, 'the link holds the hook: `ip link set xdp off` is refused');

      // A new build of the program is swapped in on the same link.
      const o2 = BpfObject.open(buildProgram('xdp_prefilter').object, { pinRoot: cfg.pinRoot });
      try {
        const p2 = o2.load().program('xdp_prefilter');
        p2.pin(nodePins(cfg).program('xdp_prefilter'));
        const r = attachPrefilter(cfg, 'up0');
        t.match(r, { action: 'replaced', programId: p2.info().id });
        t.equal(queryXdp(r.ifindex), p2.info().id, 'the device runs the new program');
      } finally {
        o2.close();
        prog.pin(nodePins(cfg).program('xdp_prefilter'));
      }

      const g = attachPrefilter(cfg, 'br0');
      t.match(g, { device: 'br0', mode: 'generic', action: 'attached' }, 'a bridge has no driver XDP: generic mode');
      t.ok(g.driverError, `driver mode's refusal is reported: ${g.driverError}`);
      t.same(pinnedDevices(cfg), ['br0', 'up0']);

      // Detached behind our back (link detached): attached again.
      mustSh('bpftool', ['link', 'detach', 'pinned', xdpLinkPin(cfg, 'br0')]);
      t.equal(xdpAttachment(cfg, 'br0'), undefined, 'seen as not attached');
      t.match(attachPrefilter(cfg, 'br0'), { action: 'attached', mode: 'generic' });

      t.ok(detachPrefilter(cfg, 'br0'));
      t.equal(queryXdp(c().if_nametoindex('br0') as number), undefined, 'detached');
      t.notOk(detachPrefilter(cfg, 'br0'), 'detaching twice is a no-op');
      t.ok(detachPrefilter(cfg, 'up0'));
      t.same(pinnedDevices(cfg), []);

      // Someone else's XDP program on the device is not replaced.
      const ifindex = c().if_nametoindex('br0') as number;
      attachXdp(foreign, ifindex, 'generic');
      t.throws(() => attachPrefilter(cfg, 'br0'), { message: /br0 already has an XDP program \(id \d+, 'fx_xdp'\) that is not sluice's/ });
      t.equal(queryXdp(ifindex), foreign.info().id, 'the foreign program is still there');
      detachXdp(ifindex, 'generic');

      // An xdp_prefilter attached without a link (by hand) is taken over.
      attachXdp(prog, ifindex, 'generic');
      t.match(attachPrefilter(cfg, 'br0'), { action: 'attached' });
      t.ok(detachPrefilter(cfg, 'br0'));
      t.equal(queryXdp(ifindex), undefined);

      t.throws(() => attachPrefilter(cfg, 'nope0'), { message: /uplink device 'nope0' does not exist/ });
    });
  });
}
