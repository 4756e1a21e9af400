/**
 * The libbpf loader against the real kernel: pinning and reuse, globals, verifier
 * errors with the log, map operations through BTF codecs, test runs, tc/tcx and XDP
 * attachment in a network namespace.
 */
import t from 'tap';
import { cpSync, existsSync, readFileSync, appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { BpfObject } from '../../src/bpf/object.js';
import { BpfMap } from '../../src/bpf/map.js';
import { BpfError, VerifierError } from '../../src/bpf/errors.js';
import { Program } from '../../src/bpf/program.js';
import { testRun, skbCtx } from '../../src/bpf/testrun.js';
import { attachTc, detachTc, queryTc } from '../../src/bpf/tc.js';
import { attachXdp, detachXdp, queryXdp } from '../../src/bpf/xdp.js';
import { buildProgram } from '../../src/datapath/build.js';
import { withNetns } from '../../src/net/netns.js';
import { libc as c } from '../../src/sys/libc.js';
import { kernelFeatures } from '../../src/datapath/status.js';
import { release } from 'node:os';
import { IS_ROOT, REPO, mustSh, netns, pinRoot, sh, tempDir, uniquePrefix } from '../helpers/env.js';

if (!IS_ROOT) {
  t.plan(0, 'loader tests need root (CAP_BPF, CAP_NET_ADMIN)');
} else {
  const FIXTURES = join(REPO, 'test/fixtures/bpf');
  /** tcx links (Linux 6.6+); older kernels take the classic tc fallback. */
  const HAS_TCX = kernelFeatures().tcx;
  const INCLUDE = join(REPO, 'include');

  const build = (tt: Parameters<typeof tempDir>[0], program: string) =>
    buildProgram(program, { srcDir: FIXTURES, includeDir: INCLUDE, cacheDir: tempDir(tt, uniquePrefix('c')) }).object;

  interface Key { a: number; b: number }
  interface Val { count: bigint; tag: number[] }

  t.test('maps are pinned under the pin root and reused on reload, contents kept', async (t) => {
    const root = pinRoot(t, uniquePrefix('ld'));
    const obj = build(t, 'fx_loader');
    const first = BpfObject.open(obj, { pinRoot: root });
    const loaded = first.load();
    const m = loaded.map<Key, Val>('fx_hash');
    m.update({ a: 1, b: 2 }, { count: 5n, tag: [1, 2, 3, 4, 5, 6] });
    const id = m.info.id;
    first.close();
    t.ok(existsSync(join(root, 'fx_hash')), 'map pinned by name');

    const second = BpfObject.open(obj, { pinRoot: root });
    const again = second.load().map<Key, Val>('fx_hash');
    t.equal(again.info.id, id, 'the pinned map is reused (same id)');
    t.same(again.lookup({ a: 1, b: 2 }), { count: 5n, tag: [1, 2, 3, 4, 5, 6] }, 'contents survive the reload');
    second.close();

    const pinned = BpfMap.openPinned<Key, Val>(join(root, 'fx_hash'));
    t.equal(pinned.info.name, 'fx_hash');
    t.equal(pinned.info.type, 'hash');
    t.same(pinned.lookup({ a: 1, b: 2 })?.count, 5n, 'codecs come from the kernel BTF of a pinned map');
    pinned.close();
  });

  t.test('read-only globals are set by name before load', async (t) => {
    const root = pinRoot(t, uniquePrefix('gl'));
    const objPath = build(t, 'fx_loader');
    const run = (answer?: number) => {
      const o = BpfObject.open(objPath, { pinRoot: root });
      try {
        t.same(o.globalNames(), ['fx_answer']);
        if (answer !== undefined) o.setGlobals({ fx_answer: answer });
        t.equal(o.globals().fx_answer, answer ?? 7);
        return testRun(o.load().program('fx_tc'), { data: Buffer.alloc(64) }).retval;
      } finally {
        o.close();
      }
    };
    t.equal(run(), 0, 'default global: TC_ACT_OK');
    t.equal(run(42), 2, 'fx_answer = 42: TC_ACT_SHOT');
    const o = BpfObject.open(objPath, { pinRoot: root });
    t.throws(() => o.setGlobals({ nope: 1 }), { message: /no global 'nope' in \.rodata \(have: fx_answer\)/ });
    t.throws(() => o.setGlobals({ fx_answer: 'x' }), { message: /global fx_answer/ });
    o.close();
  });

  t.test('a rejected program raises VerifierError with the log tail and a log file', async (t) => {
    const root = pinRoot(t, uniquePrefix('vr'));
    const logDir = tempDir(t, uniquePrefix('log'));
    const o = BpfObject.open(build(t, 'fx_reject'), { pinRoot: root, logDir });
    let err: unknown;
    try {
      o.load();
    } catch (e) {
      err = e;
    } finally {
      o.close();
    }
    t.ok(err instanceof VerifierError, 'VerifierError');
    const v = err as VerifierError;
    t.equal(v.program, 'fx_reject');
    t.equal(v.code, 'EACCES');
    t.match(v.message, /load program 'fx_reject'/);
    t.match(v.message, /invalid access to packet/, 'the verifier\'s reason is quoted');
    t.match(v.message, /full verifier log: \//);
    t.ok(v.logPath && existsSync(v.logPath), 'full log written');
    t.match(readFileSync(v.logPath!, 'utf8'), /invalid access to packet/);
  });

  t.test('errno values come with hints', async (t) => {
    let err: unknown;
    try {
      BpfMap.openPinned('/sys/fs/bpf/definitely-not-there-sluice');
    } catch (e) {
      err = e;
    }
    t.ok(err instanceof BpfError);
    t.equal((err as BpfError).code, 'ENOENT');
    t.match((err as Error).message, /open pinned map \/sys\/fs\/bpf\/definitely-not-there-sluice: ENOENT.*hint: .*sluice node init/);
    t.throws(() => BpfObject.open('/nonexistent/x.o'), { message: /open BPF object \/nonexistent\/x\.o: ENOENT/ });
  });

  t.test('map operations: update, lookup, delete, iterate, batch, per-CPU', async (t) => {
    const root = pinRoot(t, uniquePrefix('mp'));
    const o = BpfObject.open(build(t, 'fx_loader'), { pinRoot: root });
    t.teardown(() => o.close());
    const loaded = o.load();
    const m = loaded.map<Key, Val>('fx_hash');
    t.equal(m.lookup({ a: 9, b: 9 }), undefined, 'missing key');
    m.update({ a: 9, b: 9 }, { count: 1n, tag: [0, 0, 0, 0, 0, 9] });
    t.equal(m.encodeKey({ a: 9, b: 9 }).toString('hex'), '0900000009000000', 'padding encoded as zero');
    t.ok(m.delete({ a: 9, b: 9 }));
    t.notOk(m.delete({ a: 9, b: 9 }), 'second delete reports absence');
    const entries = Array.from({ length: 10000 }, (_, i) => [{ a: i, b: i & 0xffff }, { count: BigInt(i), tag: [i & 255, 0, 0, 0, 0, 0] }] as [Key, Val]);
    t.equal(m.updateBatch(entries), 10000);
    const seen = new Map<number, bigint>();
    for (const [k, v] of m.entries()) seen.set(k.a, v.count);
    t.equal(seen.size, 10000, 'iteration sees every entry');
    t.equal(seen.get(4321), 4321n);
    t.equal(m.clear(), 10000);
    t.equal([...m.keys()].length, 0);

    const pc = loaded.map<number, Val[]>('fx_percpu');
    t.ok(pc.perCpu);
    const prog = loaded.program('fx_tc');
    testRun(prog, { data: Buffer.alloc(64), repeat: 10 });
    const perCpu = pc.lookup(0)!;
    t.equal(perCpu.length, (c(), pc.valueBufSize / 16), 'one value per possible CPU');
    t.equal(perCpu.reduce((a, v) => a + v.count, 0n), 10n, 'the program counted 10 runs across CPUs');
  });

  t.test('test run returns the verdict, the output packet and a duration', async (t) => {
    const root = pinRoot(t, uniquePrefix('tr'));
    const o = BpfObject.open(build(t, 'fx_loader'), { pinRoot: root });
    t.teardown(() => o.close());
    const prog = o.load().program('fx_tc');
    const data = Buffer.alloc(60, 0xab);
    const r = testRun(prog, { data, repeat: 1000, ctx: skbCtx(1) });
    t.equal(r.retval, 0);
    t.same(r.data, data, 'untouched packet comes back');
    t.ok(r.durationNs > 0, 'duration measured');
  });

  t.test('tc attach/detach in a network namespace: tcx link pinned, tc fallback, XDP', async (t) => {
    const prefix = uniquePrefix('at');
    const root = pinRoot(t, prefix);
    const ns = netns(t, `${prefix}-ns`);
    mustSh('ip', ['-n', ns, 'link', 'add', 'va', 'type', 'veth', 'peer', 'name', 'vb']);
    mustSh('ip', ['-n', ns, 'link', 'set', 'va', 'up']);
    mustSh('ip', ['-n', ns, 'link', 'set', 'vb', 'up']);
    const o = BpfObject.open(build(t, 'fx_loader'), { pinRoot: root });
    t.teardown(() => o.close());
    const loaded = o.load();
    const tc = loaded.program('fx_tc');
    const xdp = loaded.program('fx_xdp');
    const link = join(root, 'links', 'va-ingress');

    withNetns(`/run/netns/${ns}`, () => {
      const ifindex = c().if_nametoindex('va') as number;
      t.ok(ifindex > 0);
      const a = attachTc(tc, ifindex, 'ingress', { linkPin: link });
      if (HAS_TCX) {
        t.equal(a.mode, 'tcx', 'this kernel has tcx');
        t.ok(existsSync(link), 'the tcx link is pinned');
        // bpftool 7.1 predates tcx and prints the link type as a number (11 = BPF_LINK_TYPE_TCX).
        t.match(sh('bpftool', ['link', 'show', 'pinned', link]).stdout, new RegExp(`(tcx|type 11)\\s+prog ${tc.info().id}\\b`));
        // Re-attaching replaces the program on the same link atomically.
        const again = attachTc(tc, ifindex, 'ingress', { linkPin: link });
        t.equal(again.mode, 'tcx');
        t.ok(detachTc(ifindex, 'ingress', { linkPin: link }));
        t.notOk(existsSync(link), 'link unpinned on detach');
      } else {
        // Before Linux 6.6 (the kernel matrix's 5.10 and 6.1): the same call falls back to a
        // clsact qdisc with a cls_bpf filter, and pins no link.
        t.equal(a.mode, 'tc', `no tcx on ${release()}: classic tc`);
        t.notOk(existsSync(link), 'no link pinned');
        t.equal(queryTc(ifindex, 'ingress'), tc.info().id, 'cls_bpf filter on ingress');
        t.ok(detachTc(ifindex, 'ingress', { linkPin: link }));
        t.equal(queryTc(ifindex, 'ingress'), undefined, 'ingress filter gone');
      }

      const classic = attachTc(tc, ifindex, 'egress', { mode: 'tc' });
      t.equal(classic.mode, 'tc');
      t.equal(queryTc(ifindex, 'egress'), tc.info().id, 'cls_bpf filter found with our program');
      t.match(sh('tc', ['filter', 'show', 'dev', 'va', 'egress']).stdout, /fx_tc.*direct-action/);
      t.ok(detachTc(ifindex, 'egress'));
      t.equal(queryTc(ifindex, 'egress'), undefined, 'filter gone');
      t.notOk(detachTc(ifindex, 'egress'), 'detaching twice is a no-op');

      attachXdp(xdp, ifindex, 'generic');
      t.equal(queryXdp(ifindex), xdp.info().id);
      detachXdp(ifindex, 'generic');
      t.equal(queryXdp(ifindex), undefined);
    });
    t.throws(() => attachTc(tc, 999999, 'ingress', { mode: 'tc' }), { message: /ifindex 999999/ });
  });

  t.test('the build cache: unchanged sources are not rebuilt, a changed header is', async (t) => {
    const dir = tempDir(t, uniquePrefix('bc'));
    cpSync(join(REPO, 'bpf'), join(dir, 'bpf'), { recursive: true });
    cpSync(INCLUDE, join(dir, 'include'), { recursive: true });
    const o = { srcDir: join(dir, 'bpf'), includeDir: join(dir, 'include'), cacheDir: join(dir, 'cache') };
    const a = buildProgram('to_container', o);
    t.notOk(a.cached);
    const b = buildProgram('to_container', o);
    t.ok(b.cached, 'second build comes from the cache');
    t.equal(b.object, a.object);
    appendFileSync(join(dir, 'include/sluice/lib/eth.h'), '\n/* changed */\n');
    const c2 = buildProgram('to_container', o);
    t.notOk(c2.cached, 'a header change rebuilds');
    t.not(c2.hash, a.hash);
    t.notOk(existsSync(a.object), 'the stale object is removed');
    appendFileSync(join(dir, 'bpf/to_container.c'), '\nint broken(\n');
    t.throws(() => buildProgram('to_container', o), { message: /compiling .*to_container\.c failed/ });
    void Program;
  });
}
