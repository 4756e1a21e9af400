/**
 * What `lab up` checks on the machine before it creates anything: that the underlay
 * subnets overlap no address or route of the root network namespace, that none of its
 * names exist yet, and that the tools it runs are there. Reads only.
 */
import { existsSync } from 'node:fs';
import { run } from '../net/exec.js';
import { listNetns } from '../net/netns.js';
import { cidrOverlaps, parseCidr, type Cidr } from '../util/ipv4.js';
import { planNetns, type Plan } from './plan.js';

/** The root namespace, seen through PID 1 (lab up may itself run inside another namespace). */
const ROOT_NETNS = '/proc/1/ns/net';

function inRoot(args: string[]): unknown[] {
  const r = existsSync(ROOT_NETNS) ? run('nsenter', [`--net=${ROOT_NETNS}`, 'ip', ...args], { allowFail: true }) : run('ip', args, { allowFail: true });
  if (r.status !== 0) throw new Error(`cannot read the root network namespace (ip ${args.join(' ')}): ${r.stderr.trim()}`);
  return r.stdout.trim() ? (JSON.parse(r.stdout) as unknown[]) : [];
}

export interface RootUse {
  what: string;
  cidr: Cidr;
}

/** The root namespace's IPv4 addresses (with their subnets) and routes, the default route excepted. */
export function rootNamespaceUse(): RootUse[] {
  const out: RootUse[] = [];
  const links = inRoot(['-j', '-4', 'addr', 'show']) as { ifname: string; addr_info?: { family: string; local: string; prefixlen: number }[] }[];
  for (const l of links) {
    for (const a of l.addr_info ?? []) {
      if (a.family !== 'inet') continue;
      out.push({ what: `address ${a.local}/${a.prefixlen} on ${l.ifname}`, cidr: parseCidr(`${a.local}/${a.prefixlen}`, true) });
    }
  }
  const routes = inRoot(['-j', '-4', 'route', 'show', 'table', 'all']) as { dst: string; dev?: string; table?: string; type?: string }[];
  for (const r of routes) {
    if (r.dst === 'default' || r.dst === '0.0.0.0/0') continue;
    let cidr: Cidr;
    try {
      cidr = parseCidr(r.dst.includes('/') ? r.dst : `${r.dst}/32`, true);
    } catch {
      continue;
    }
    out.push({ what: `route ${r.type && r.type !== 'unicast' ? `${r.type} ` : ''}${r.dst}${r.dev ? ` dev ${r.dev}` : ''}${r.table ? ` table ${r.table}` : ''}`, cidr });
  }
  return out;
}

/** The underlay subnets that overlap something of the root namespace, described. */
export function underlayConflicts(p: Plan, use: readonly RootUse[]): string[] {
  const problems: string[] = [];
  for (const s of p.subnets) {
    const c = parseCidr(s.cidr);
    for (const u of use) if (cidrOverlaps(c, u.cidr)) problems.push(`subnet ${s.name} (${s.cidr}) overlaps the root namespace's ${u.what}`);
  }
  return problems;
}

/** Everything that must hold before `lab up` makes anything; throws listing every problem. */
export function preflight(p: Plan, tools: { etcd: string }): void {
  const problems: string[] = [];
  if (process.getuid?.() !== 0) problems.push('the lab needs root (network namespaces, bpffs, the agents)');
  for (const tool of ['ip', 'nsenter']) {
    if (run('sh', ['-c', `command -v ${tool}`], { allowFail: true }).status !== 0) problems.push(`${tool} is not installed`);
  }
  if (p.etcd && !existsSync(tools.etcd)) problems.push(`${tools.etcd} is not installed (Debian: apt-get install etcd-server), needed for store etcd`);
  if (p.etcd && run('sh', ['-c', 'command -v openssl'], { allowFail: true }).status !== 0) {
    problems.push('openssl is not installed (Debian: apt-get install openssl), needed for store etcd: the lab makes its TLS certificates with it');
  }
  if (problems.length === 0) {
    problems.push(...underlayConflicts(p, rootNamespaceUse()));
    const existing = new Set(listNetns());
    const taken = planNetns(p).filter((n) => existing.has(n));
    if (taken.length) problems.push(`network namespace(s) ${taken.join(', ')} exist already (another lab, or something else; \`ip netns del\` them if they are stale)`);
    if (existsSync(p.pinRoot)) problems.push(`${p.pinRoot} exists already (a stale lab? remove it with rm -r)`);
  }
  if (problems.length) throw new Error(`cannot start lab ${p.lab}:\n  ${problems.join('\n  ')}`);
}
