/**
 * The attach routine (src/datapath/attach.ts) over a table of fixture programs, on devices
 * of a throwaway network namespace and a throwaway cgroup: a tc hook of a pod veth, the
 * uplink's tc egress (the hook masquerading needs), the uplink's XDP hook and a cgroup
 * socket hook (the one a socket-level service load balancer needs). Each one attached,
 * attached again (idempotent: the program swapped in on the pinned link), checked from the
 * kernel's side and detached. The datapath's own table is exercised by the e2e tests.
 */
import t from 'tap';
import { existsSync, mkdirSync, readFileSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { release } from 'node:os';
import { BpfObject } from '../../src/bpf/object.js';
import { LINK_TYPE, pinnedLinkState } from '../../src/bpf/link.js';
import { queryTc } from '../../src/bpf/tc.js';
import { queryXdp } from '../../src/bpf/xdp.js';
import { attacher } from '../../src/datapath/attach.js';
import { AttachTableError, type Attachment } from '../../src/datapath/attachments.js';
import { buildProgram } from '../../src/datapath/build.js';
import { nodePins } from '../../src/datapath/pins.js';
import { kernelFeatures } from '../../src/datapath/status.js';
import { withNetns } from '../../src/net/netns.js';
import { ifindexOf } from '../../src/net/ifindex.js';
import { IS_ROOT, REPO, mustSh, netns, pinRoot, sh, tempDir, uniquePrefix } from '../helpers/env.js';

/** Where cgroup v2 is mounted (the unified hierarchy of a hybrid setup too), or undefined. */
function cgroup2Mount(): string | undefined {
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const [left, right] = line.split(' - ');
    if (right?.split(' ')[0] === 'cgroup2') return left!.split(' ')[4];
  }
  return undefined;
}

if (!IS_ROOT) {
  t.plan(0, 'needs root (BPF, network namespaces, cgroups)');
} else {
  const HAS_TCX = kernelFeatures().tcx;
  const prefix = uniquePrefix('aa');
  const cfg = { pinRoot: pinRoot(t, prefix) };
  const pins = nodePins(cfg);
  const build = (program: string) => buildProgram(program, {
    srcDir: join(REPO, 'test/fixtures/bpf'), includeDir: join(REPO, 'include'), cacheDir: tempDir(t, uniquePrefix('c')),
  }).object;
  const fx = BpfObject.open(build('fx_loader'), { pinRoot: cfg.pinRoot });
  t.teardown(() => fx.close());
  const cg = BpfObject.open(build('fx_cgroup'), { pinRoot: cfg.pinRoot });
  t.teardown(() => cg.close());
  const loaded = fx.load();
  const tcProg = loaded.program('fx_tc');
  const xdpProg = loaded.program('fx_xdp');
  const cgProg = cg.load().program('fx_connect4');
  // The routine opens programs by their pins, as the agent does; the tc fixture serves two rows.
  tcProg.pin(pins.program('fx_tc'));
  tcProg.pin(pins.program('fx_masq'));
  xdpProg.pin(pins.program('fx_xdp'));
  cgProg.pin(pins.program('fx_connect4'));

  const TABLE: Attachment[] = [
    { program: 'fx_tc', source: 'fx_loader', role: 'pod', hook: { kind: 'tc', direction: 'ingress' }, owner: 'endpoints' },
    { program: 'fx_masq', source: 'fx_loader', role: 'uplink', hook: { kind: 'tc', direction: 'egress' }, owner: 'routing' },
    { program: 'fx_xdp', source: 'fx_loader', role: 'uplink', hook: { kind: 'xdp' }, owner: 'prefilter' },
    { program: 'fx_connect4', source: 'fx_cgroup', role: 'cgroup', hook: { kind: 'cgroup', hook: 'connect4' }, owner: 'routing' },
  ];
  const { attach, detach, linkPin, linked } = attacher(TABLE);
  const tcId = tcProg.info().id;

  t.test('tc hooks: a pod veth ingress and the uplink egress, tcx link (or classic tc before 6.6), idempotent', async (t) => {
    const ns = netns(t, `${prefix}-ns`);
    mustSh('ip', ['-n', ns, 'link', 'add', 'va', 'type', 'veth', 'peer', 'name', 'up0']);
    for (const d of ['va', 'up0']) mustSh('ip', ['-n', ns, 'link', 'set', d, 'up']);
    withNetns(`/run/netns/${ns}`, () => {
      for (const [role, dev, program, direction] of [['pod', 'va', 'fx_tc', 'ingress'], ['uplink', 'up0', 'fx_masq', 'egress']] as const) {
        const ifindex = ifindexOf(dev);
        const pin = linkPin(cfg, role, dev, program);
        t.equal(pin, pins.link(dev, direction));
        const a = attach(cfg, role, dev, program);
        t.match(a, { kind: 'tc', program, role, device: dev, ifindex, hook: direction, programId: tcId, action: 'attached', mode: HAS_TCX ? 'tcx' : 'tc' },
          `${program} on ${dev} ${direction}${HAS_TCX ? '' : ` (no tcx on ${release()})`}`);
        if (HAS_TCX) {
          t.match(pinnedLinkState(pin), { type: LINK_TYPE.tcx, programId: tcId, ifindex }, 'the kernel has the tcx link on the device');
          t.match(attach(cfg, role, { name: dev, ifindex }, program), { action: 'replaced', mode: 'tcx', linkPin: pin }, 'attaching again swaps the program on the link');
          t.equal(queryTc(ifindex, direction), undefined, 'no classic filter besides the link');
          t.same(linked(cfg, role, dev, program), { kind: 'tc', ifindex, programId: tcId, linkPin: pin }, 'linked() reads the link back');
        } else {
          t.notOk(existsSync(pin), 'classic tc pins no link');
          t.equal(queryTc(ifindex, direction), tcId, 'cls_bpf filter on the hook');
          t.match(attach(cfg, role, dev, program), { action: 'attached', mode: 'tc' }, 'attaching again replaces the filter');
          t.equal(linked(cfg, role, dev, program), undefined, 'linked(): classic tc has no link');
        }
        t.ok(detach(cfg, role, dev, program), 'detached');
        t.notOk(existsSync(pin), 'no link pin left');
        t.equal(linked(cfg, role, dev, program), undefined, 'linked(): nothing once detached');
        t.equal(queryTc(ifindex, direction), undefined, 'nothing on the hook');
        t.notOk(detach(cfg, role, dev, program), 'detaching twice is a no-op');
      }
      // A link detached behind sluice's back (bpftool link detach) stays pinned: linked() says it attaches nothing.
      if (HAS_TCX) {
        attach(cfg, 'pod', 'va', 'fx_tc');
        const pin = linkPin(cfg, 'pod', 'va', 'fx_tc');
        mustSh('bpftool', ['link', 'detach', 'id', String(pinnedLinkState(pin)!.id)]);
        t.ok(existsSync(pin), 'the detached link is still pinned');
        t.equal(linked(cfg, 'pod', 'va', 'fx_tc'), undefined, 'linked(): a detached link attaches nothing');
        t.ok(detach(cfg, 'pod', 'va', 'fx_tc'), 'detach removes its pin');
      }
      // A device that is gone: detach removes the pin and touches no device.
      attach(cfg, 'pod', 'va', 'fx_tc');
      mustSh('ip', ['link', 'del', 'va']);
      detach(cfg, 'pod', { name: 'va', ifindex: 0 }, 'fx_tc');
      t.notOk(existsSync(linkPin(cfg, 'pod', 'va', 'fx_tc')), 'the link pin of a gone device is removed');
    });
  });

  t.test('the uplink XDP hook: a pinned XDP link in driver mode on a veth, unchanged when attached again', async (t) => {
    const ns = netns(t, `${prefix}-nx`);
    mustSh('ip', ['-n', ns, 'link', 'add', 'up0', 'type', 'veth', 'peer', 'name', 'up0p']);
    for (const d of ['up0', 'up0p']) mustSh('ip', ['-n', ns, 'link', 'set', d, 'up']);
    withNetns(`/run/netns/${ns}`, () => {
      const ifindex = ifindexOf('up0');
      const a = attach(cfg, 'uplink', 'up0', 'fx_xdp');
      t.match(a, { kind: 'xdp', device: 'up0', ifindex, hook: 'xdp', mode: 'driver', action: 'attached', programId: xdpProg.info().id, linkPin: pins.xdpLink('up0') });
      t.equal(queryXdp(ifindex), xdpProg.info().id, 'the device runs it');
      t.same(linked(cfg, 'uplink', 'up0', 'fx_xdp'), { kind: 'xdp', ifindex, mode: 'driver', programId: xdpProg.info().id, linkPin: pins.xdpLink('up0') }, 'linked() reads the XDP link back');
      t.equal(linked(cfg, 'uplink', 'up0p', 'fx_xdp'), undefined, 'linked(): nothing on the peer');
      t.match(attach(cfg, 'uplink', 'up0', 'fx_xdp'), { action: 'unchanged' });
      t.ok(detach(cfg, 'uplink', 'up0', 'fx_xdp'));
      t.equal(queryXdp(ifindex), undefined, 'detached');
      t.notOk(existsSync(pins.xdpLink('up0')));
      t.equal(linked(cfg, 'uplink', 'up0', 'fx_xdp'), undefined, 'linked(): nothing once detached');
      t.throws(() => attach(cfg, 'uplink', 'nope0', 'fx_xdp'), { message: /uplink device 'nope0' does not exist in this network namespace/ });
      t.throws(() => attach(cfg, 'pod', 'up0', 'fx_xdp'), AttachTableError, 'the wrong role is refused');
    });
  });

  const mount = cgroup2Mount();
  t.test('a cgroup socket hook: a pinned cgroup link, swapped in place when attached again', { skip: mount ? false : 'no cgroup2 mount' }, async (t) => {
    const dir = join(mount!, `${prefix}-cg`);
    mkdirSync(dir);
    t.teardown(() => {
      if (existsSync(dir)) rmdirSync(dir);
    });
    const cgId = cgProg.info().id;
    const pin = linkPin(cfg, 'cgroup', dir, 'fx_connect4');
    t.equal(pin, pins.cgroupLink('fx_connect4'));
    const a = attach(cfg, 'cgroup', dir, 'fx_connect4');
    t.match(a, { kind: 'cgroup', device: dir, hook: 'connect4', programId: cgId, linkPin: pin, action: 'attached' });
    t.match(pinnedLinkState(pin), { type: LINK_TYPE.cgroup, programId: cgId }, 'the kernel has the cgroup link');
    t.match(sh('bpftool', ['cgroup', 'show', dir]).stdout, new RegExp(`^\\s*${cgId}\\s+(connect4|cgroup_inet4_connect)\\b`, 'm'), 'bpftool sees the program on connect4 (bpftool 7.1 says cgroup_inet4_connect)');
    t.match(attach(cfg, 'cgroup', dir, 'fx_connect4'), { action: 'replaced', programId: cgId });
    t.same(linked(cfg, 'cgroup', dir, 'fx_connect4'), { kind: 'cgroup', programId: cgId, linkPin: pin }, 'linked() reads the cgroup link back');
    t.ok(detach(cfg, 'cgroup', dir, 'fx_connect4'));
    t.notOk(existsSync(pin), 'link pin removed');
    t.equal(linked(cfg, 'cgroup', dir, 'fx_connect4'), undefined, 'linked(): nothing once detached');
    t.notMatch(sh('bpftool', ['cgroup', 'show', dir]).stdout, /connect/, 'nothing left on the cgroup');
    t.notOk(detach(cfg, 'cgroup', dir, 'fx_connect4'), 'detaching twice is a no-op');
    t.throws(() => attach(cfg, 'cgroup', join(dir, 'missing'), 'fx_connect4'), { message: /open cgroup .*missing/ });
  });
}
