/**
 * Links, addresses, routes and neighbours through iproute2. Each function acts on the
 * current network namespace, or on the namespace at path `netns` (entered with
 * nsenter: `ip -n` only takes names under /run/netns, and a runtime's pod namespace is
 * often /proc/PID/ns/net).
 */
import { run, type RunOptions, type RunResult } from './exec.js';

export interface Link {
  ifindex: number;
  name: string;
  mac: string;
  mtu: number;
  up: boolean;
  /** ARP turned off (IFF_NOARP). */
  noArp: boolean;
  kind: string | undefined;
}

function runIp(netns: string | undefined, args: readonly string[], o: RunOptions = {}): RunResult {
  return netns ? run('nsenter', [`--net=${netns}`, 'ip', ...args], o) : run('ip', args, o);
}

export function ip(args: readonly string[], netns?: string): RunResult {
  return runIp(netns, args);
}

/** Runs several `ip` commands in one process (`ip -batch`), stopping at the first failure. */
export function ipBatch(lines: readonly string[], netns?: string): void {
  if (lines.length === 0) return;
  runIp(netns, ['-batch', '-'], { input: `${lines.join('\n')}\n` });
}

function ipJson<T>(args: readonly string[], netns?: string): T[] {
  const r = runIp(netns, ['-j', ...args], { allowFail: true });
  if (r.status !== 0) return [];
  const text = r.stdout.trim();
  return text ? (JSON.parse(text) as T[]) : [];
}

interface RawLink {
  ifindex: number;
  ifname: string;
  address?: string;
  mtu: number;
  flags: string[];
  linkinfo?: { info_kind?: string };
}

function toLink(r: RawLink): Link {
  return { ifindex: r.ifindex, name: r.ifname, mac: r.address ?? '', mtu: r.mtu, up: r.flags.includes('UP'), noArp: r.flags.includes('NOARP'), kind: r.linkinfo?.info_kind };
}

export function getLink(name: string, netns?: string): Link | undefined {
  const r = ipJson<RawLink>(['-d', 'link', 'show', 'dev', name], netns)[0];
  return r ? toLink(r) : undefined;
}

export function listLinks(netns?: string): Link[] {
  return ipJson<RawLink>(['-d', 'link', 'show'], netns).map(toLink);
}

export function deleteLink(name: string, netns?: string): boolean {
  return runIp(netns, ['link', 'del', 'dev', name], { allowFail: true }).status === 0;
}

export interface Route {
  dst: string;
  dev?: string;
  gateway?: string;
  scope?: string;
  protocol?: string;
}

export function listRoutes(netns?: string, table = 'main'): Route[] {
  return ipJson<Route>(['route', 'show', 'table', table], netns);
}

/** The device of the IPv4 default route, if there is one. */
export function defaultRouteDevice(netns?: string): string | undefined {
  return listRoutes(netns).find((r) => r.dst === 'default')?.dev;
}

interface RawAddrs { ifname: string; addr_info?: { family: string; local: string; prefixlen: number }[] }

const inet = (r: RawAddrs | undefined) => (r?.addr_info ?? []).filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`);

/** The IPv4 addresses (with prefix) of one device. */
export function addresses(dev: string, netns?: string): string[] {
  return inet(ipJson<RawAddrs>(['addr', 'show', 'dev', dev], netns)[0]);
}

/** The IPv4 addresses of every device, in one `ip` call: device name -> addresses. */
export function allAddresses(netns?: string): Map<string, string[]> {
  return new Map(ipJson<RawAddrs>(['-4', 'addr', 'show'], netns).map((r) => [r.ifname, inet(r)]));
}
