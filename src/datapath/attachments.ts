/**
 * The attach table: every datapath program (each SEC program of bpf/*.c, exactly once;
 * test/unit/attachments.test.ts keeps it so) with the hook it runs at and the part of
 * sluice that attaches it. Programs are attached and detached only through attach.ts,
 * which reads this table. Pure: no I/O.
 */
import type { CgroupHook } from '../bpf/cgroup.js';
import type { TcDirection } from '../bpf/tc.js';

/** The node's devices a program can run on, by the part they play. */
export type DeviceRole = 'pod' | 'overlay' | 'uplink';
/** Where a program runs: a device by its role, or a cgroup (v2) directory. */
export type AttachRole = DeviceRole | 'cgroup';

/** Each role, as messages and docs say it. */
export const ROLES: Readonly<Record<AttachRole, string>> = {
  pod: 'the host side of a pod veth',
  overlay: "the node's collect_md VXLAN device",
  uplink: "the node's uplink",
  cgroup: 'a cgroup (v2) directory',
};

export interface TcHook { kind: 'tc'; direction: TcDirection }
export interface XdpHook { kind: 'xdp' }
export interface CgroupHookSpec { kind: 'cgroup'; hook: CgroupHook }
export type Hook = TcHook | XdpHook | CgroupHookSpec;
export type HookKind = Hook['kind'];

/** The part of sluice that attaches (and detaches) a program. */
export type Owner = 'endpoints' | 'routing' | 'prefilter';

interface Row<R extends AttachRole, H extends Hook> {
  /** The program's name (its function in bpf/<source>.c). */
  program: string;
  source: string;
  role: R;
  hook: H;
  owner: Owner;
}

/** A device hook (tc or XDP) on a device role, or a cgroup hook on a cgroup. */
export type Attachment = Row<DeviceRole, TcHook | XdpHook> | Row<'cgroup', CgroupHookSpec>;

const tc = (direction: TcDirection): TcHook => ({ kind: 'tc', direction });

export const ATTACHMENTS: readonly Attachment[] = [
  { program: 'from_container', source: 'from_container', role: 'pod', hook: tc('ingress'), owner: 'endpoints' },
  { program: 'to_container', source: 'to_container', role: 'pod', hook: tc('egress'), owner: 'endpoints' },
  { program: 'from_overlay', source: 'from_overlay', role: 'overlay', hook: tc('ingress'), owner: 'routing' },
  { program: 'from_netdev', source: 'from_netdev', role: 'uplink', hook: tc('ingress'), owner: 'routing' },
  { program: 'to_netdev', source: 'to_netdev', role: 'uplink', hook: tc('egress'), owner: 'routing' },
  { program: 'xdp_prefilter', source: 'xdp_prefilter', role: 'uplink', hook: { kind: 'xdp' }, owner: 'prefilter' },
];

/** The hook's name: ingress or egress (tc), xdp, or the cgroup hook. */
export function hookName(h: Hook): string {
  return h.kind === 'tc' ? h.direction : h.kind === 'xdp' ? 'xdp' : h.hook;
}

/** The rows of `table` for a role and/or an owner, in table order. */
export function attachmentsOf(filter: { role?: AttachRole; owner?: Owner }, table: readonly Attachment[] = ATTACHMENTS): Attachment[] {
  return table.filter((a) => (filter.role === undefined || a.role === filter.role) && (filter.owner === undefined || a.owner === filter.owner));
}

/** A request the attach table cannot answer: an unknown role or program, or a program asked for on the wrong role. */
export class AttachTableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AttachTableError';
  }
}

/** Problems of a table: a program listed twice, a cgroup hook on a device or a device hook on a cgroup. */
export function tableProblems(table: readonly Attachment[]): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  for (const a of table) {
    if (seen.has(a.program)) out.push(`${a.program} has more than one row`);
    seen.add(a.program);
    if (!(a.role in ROLES)) out.push(`${a.program}: unknown role '${a.role}'`);
    else if ((a.role === 'cgroup') !== (a.hook.kind === 'cgroup')) out.push(`${a.program}: a ${a.hook.kind} hook cannot be on ${ROLES[a.role]}`);
  }
  return out;
}

/** The row of `program` on `role`; refuses, naming what exists, an unknown role, an unknown program, or the wrong role. */
export function findAttachment(role: string, program: string, table: readonly Attachment[] = ATTACHMENTS): Attachment {
  if (!Object.hasOwn(ROLES, role)) {
    throw new AttachTableError(`unknown attach role '${role}' (roles: ${Object.keys(ROLES).join(', ')})`);
  }
  const row = table.find((a) => a.program === program);
  if (!row) {
    throw new AttachTableError(`no program '${program}' in the attach table (programs: ${table.map((a) => a.program).join(', ')})`);
  }
  if (row.role !== role) {
    throw new AttachTableError(`${program} attaches to ${ROLES[row.role]} (role ${row.role}), not to ${ROLES[role as AttachRole]} (role ${role})`);
  }
  return row;
}
