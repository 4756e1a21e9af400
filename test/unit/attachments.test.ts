/**
 * The attach table (src/datapath/attachments.ts) against the C sources: every SEC program
 * of bpf/*.c has exactly one row, in its own file, with a hook of its section's kind; and
 * the attach routine (src/datapath/attach.ts) refuses what the table does not have before
 * it touches anything (no root needed: nothing here reaches the kernel).
 */
import t from 'tap';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { attach, attacher, detach, linkPin } from '../../src/datapath/attach.js';
import {
  ATTACHMENTS, AttachTableError, attachmentsOf, findAttachment, hookName, tableProblems, type AttachRole, type Attachment, type HookKind,
} from '../../src/datapath/attachments.js';
import { datapathSources } from '../../src/datapath/build.js';
import { REPO } from '../helpers/env.js';

interface SecProgram { source: string; program: string; section: string }

/** Every `SEC("...")` function of bpf/*.c (maps and the license are not functions). */
function secPrograms(): SecProgram[] {
  const dir = join(REPO, 'bpf');
  const out: SecProgram[] = [];
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.c')).sort()) {
    const text = readFileSync(join(dir, f), 'utf8');
    for (const m of text.matchAll(/SEC\("([^"]+)"\)\s*(?:static\s+)?(?:__always_inline\s+)?int\s+(\w+)\s*\(/g)) {
      out.push({ source: f.replace(/\.c$/, ''), program: m[2]!, section: m[1]! });
    }
  }
  return out;
}

/** The hook kind a program's ELF section loads it as. */
function kindOf(section: string): HookKind | undefined {
  if (section === 'tc' || section.startsWith('tc/') || section.startsWith('classifier')) return 'tc';
  if (section === 'xdp' || section.startsWith('xdp/')) return 'xdp';
  if (section.startsWith('cgroup')) return 'cgroup';
  return undefined;
}

t.test('every SEC program of bpf/*.c has exactly one row, with a hook of its kind', async (t) => {
  const progs = secPrograms();
  t.ok(progs.length >= 5, `found ${progs.length} programs in bpf/*.c`);
  for (const p of progs) {
    const rows = ATTACHMENTS.filter((a) => a.program === p.program);
    t.equal(rows.length, 1, `${p.program} (bpf/${p.source}.c, SEC("${p.section}")) has one row`);
    const row = rows[0];
    if (!row) continue;
    t.equal(row.source, p.source, `${p.program}: the row names its file`);
    t.equal(row.hook.kind, kindOf(p.section), `${p.program}: a ${kindOf(p.section)} program on a ${row.hook.kind} hook`);
  }
  const inC = new Set(progs.map((p) => p.program));
  t.same(ATTACHMENTS.filter((a) => !inC.has(a.program)).map((a) => a.program), [], 'no row without a program in bpf/*.c');
  t.same([...new Set(ATTACHMENTS.map((a) => a.source))].sort(), [...datapathSources()].sort(), 'the table covers every source the datapath builds');
  t.same(tableProblems(ATTACHMENTS), [], 'the table is consistent');
});

t.test('rows by role and owner, hook names', async (t) => {
  t.same(attachmentsOf({ role: 'pod' }).map((a) => `${a.program} ${hookName(a.hook)}`), ['from_container ingress', 'to_container egress']);
  t.same(attachmentsOf({ owner: 'routing' }).map((a) => `${a.role} ${a.program} ${hookName(a.hook)}`), ['overlay from_overlay ingress', 'uplink from_netdev ingress', 'uplink to_netdev egress']);
  t.same(attachmentsOf({ role: 'uplink' }).map((a) => `${a.owner} ${a.program} ${hookName(a.hook)}`), ['routing from_netdev ingress', 'routing to_netdev egress', 'prefilter xdp_prefilter xdp']);
});

t.test('link pins: where each hook kind pins its link', async (t) => {
  const cfg = { pinRoot: '/sys/fs/bpf/x' };
  t.equal(linkPin(cfg, 'pod', 'slc1a2b3c', 'from_container'), '/sys/fs/bpf/x/links/slc1a2b3c-ingress');
  t.equal(linkPin(cfg, 'pod', 'slc1a2b3c', 'to_container'), '/sys/fs/bpf/x/links/slc1a2b3c-egress');
  t.equal(linkPin(cfg, 'overlay', 'sluice_vxlan', 'from_overlay'), '/sys/fs/bpf/x/links/sluice_vxlan-ingress');
  t.equal(linkPin(cfg, 'uplink', 'eth0.100', 'from_netdev'), '/sys/fs/bpf/x/links/eth0:100-ingress', "bpffs names have no '.'");
  t.equal(linkPin(cfg, 'uplink', 'eth0.100', 'xdp_prefilter'), '/sys/fs/bpf/x/xdp/eth0:100');
  const cg = attacher([{ program: 'sock_lb', source: 'sock_lb', role: 'cgroup', hook: { kind: 'cgroup', hook: 'connect4' }, owner: 'routing' }]);
  t.equal(cg.linkPin(cfg, 'cgroup', '/sys/fs/cgroup/unified', 'sock_lb'), '/sys/fs/bpf/x/cgroup/sock_lb');
});

t.test('the routine refuses an unknown role, an unknown program and the wrong role, touching nothing', async (t) => {
  // A pin root that does not exist: any attempt to open a program there would fail with another error.
  const cfg = { pinRoot: '/nonexistent/sluice-attach-test' };
  for (const [name, fn] of [['attach', attach], ['detach', detach]] as const) {
    t.throws(() => fn(cfg, 'eth0' as AttachRole, 'eth0', 'from_netdev'),
      new AttachTableError("unknown attach role 'eth0' (roles: pod, overlay, uplink, cgroup)"), `${name}: unknown role`);
    t.throws(() => fn(cfg, 'uplink', 'eth0', 'to_nowhere'),
      new AttachTableError("no program 'to_nowhere' in the attach table (programs: from_container, to_container, from_overlay, from_netdev, to_netdev, xdp_prefilter)"),
      `${name}: unknown program`);
    t.throws(() => fn(cfg, 'uplink', 'eth0', 'from_container'),
      new AttachTableError('from_container attaches to the host side of a pod veth (role pod), not to the node\'s uplink (role uplink)'),
      `${name}: a program on the wrong role`);
  }
  t.throws(() => linkPin(cfg, 'overlay', 'sluice_vxlan', 'xdp_prefilter'), AttachTableError, 'linkPin: the wrong role');
  t.throws(() => findAttachment('__proto__', 'from_container'), { message: /unknown attach role '__proto__'/ }, 'no role from the prototype');
});

t.test('a table with a program twice, or a hook on the wrong kind of role, is refused', async (t) => {
  const row: Attachment = { program: 'p', source: 'p', role: 'pod', hook: { kind: 'tc', direction: 'ingress' }, owner: 'endpoints' };
  t.throws(() => attacher([row, { ...row, hook: { kind: 'tc', direction: 'egress' } }]), { name: 'AttachTableError', message: /p has more than one row/ });
  const wrong = { ...row, role: 'cgroup' } as unknown as Attachment;
  t.throws(() => attacher([wrong]), { message: /p: a tc hook cannot be on a cgroup \(v2\) directory/ });
  const cgOnDevice = { ...row, hook: { kind: 'cgroup', hook: 'connect4' } } as unknown as Attachment;
  t.throws(() => attacher([cgOnDevice]), { message: /p: a cgroup hook cannot be on the host side of a pod veth/ });
});
