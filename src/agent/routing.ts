/**
 * Routing between nodes, as an agent feature. On every reconciliation (and whenever a node
 * record in the store changes): the cluster's other nodes written to sl_nodes (the only
 * senders of VXLAN the datapath takes), then the node's VXLAN device, the overlay and uplink
 * programs attached and sl_node written, then the plan (src/routing/plan.ts) from the
 * node records, the mode and the kernel's routes, applied to sl_ipcache and to the
 * kernel's routes for remote pod blocks (marked `proto 210`), and pod MTUs brought in
 * line with the mode. Entries and routes are written before stale ones are removed, so
 * a change never leaves a prefix unreachable in between. sl_ipcache is merged and written
 * only when the plan or a contribution changed, and read back for drift only when a check is
 * due (see syncIpcache below).
 */
import type { IpcacheResponse, NodesResponse } from '../api/types.js';
import { attach, linked } from '../datapath/attach.js';
import { attachmentsOf } from '../datapath/attachments.js';
import { openProgram } from '../datapath/loader.js';
import { IPCACHE_MAP, readIpcache, syncIpcache, type IpcacheChange, type IpcacheEntry } from '../maps/ipcache.js';
import { readNodeConfig, writeNodeConfig } from '../maps/node.js';
import { syncNodes } from '../maps/nodes.js';
import { readMasqConfig, syncNonMasq, writeMasqConfig } from '../maps/masq.js';
import { collectNat } from '../maps/nat.js';
import { parseLocalPortRange, planMasquerade, type MasqPlan } from '../routing/masq.js';
import { readFileSync } from 'node:fs';
import { cidrWithin, parseCidr } from '../util/ipv4.js';
import { podMtu, uplinkMtu } from '../endpoint/mtu.js';
import { run } from '../net/exec.js';
import { getLink, ipBatch, listRoutes } from '../net/ip.js';
import { ensureVxlan, VXLAN_DEV, VXLAN_OVERHEAD, VXLAN_PORT } from '../net/vxlan.js';
import type { Config } from '../config/config.js';
import { parseNodeRecord, underlayOf } from '../node/underlay.js';
import { parseRecords } from '../store/record.js';
import { planRoutes, SLUICE_RT_PROTO, type PlannedRoute, type RoutePlan } from '../routing/plan.js';
import { HEALTH, NODES, nodeOfHealthKey } from '../store/keys.js';
import type { Unwatch } from '../store/types.js';
import type { AgentContext, AgentFeature, FeatureReport, MapSyncReport, ReconcilePass } from './feature.js';
import { fingerprint } from './fingerprint.js';
import { MapSync } from './map-sync.js';

/** The id of the pinned program `name` (this build's, once the datapath is loaded). */
function programId(cfg: Config, name: string): number {
  const prog = openProgram(cfg, name);
  try {
    return prog.info().id;
  } finally {
    prog.close();
  }
}

/** This namespace's net.ipv4.ip_local_port_range (undefined when it cannot be read). */
function localPortRange(): ReturnType<typeof parseLocalPortRange> {
  try {
    return parseLocalPortRange(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8'));
  } catch {
    return undefined;
  }
}

/**
 * sl_nonmasq, then sl_masq (so masquerade, once on, never translates toward a destination
 * that is exempt), then the collection of dead NAT pairs; returns what it changed.
 */
function syncMasquerade(cfg: Config, plan: MasqPlan): string[] {
  const changed: string[] = [];
  const d = syncNonMasq(cfg, plan.nonMasq);
  changed.push(...d.added.map((c) => `nonmasq +${c}`), ...d.removed.map((c) => `nonmasq -${c}`));
  const have = readMasqConfig(cfg);
  if (JSON.stringify(have) !== JSON.stringify(plan.config)) {
    writeMasqConfig(cfg, plan.config);
    const c = plan.config;
    changed.push(`sl_masq: ${c.flags ? 'on' : 'off'}, address ${c.addr}, ports ${c.port_min}-${c.port_max}`);
  }
  const gc = collectNat(cfg);
  if (gc.deleted) changed.push(`nat: ${gc.deleted} dead entries removed`);
  return changed;
}

/** The `ip route` line that keeps `r` in the kernel. */
function routeLine(r: PlannedRoute, uplink: string, selfIp: string): string {
  return r.path === 'tunnel'
    ? `route replace ${r.dst} dev ${VXLAN_DEV} proto ${SLUICE_RT_PROTO} src ${selfIp} encap ip id 0 dst ${r.via}`
    : `route replace ${r.dst} via ${r.via} dev ${uplink} proto ${SLUICE_RT_PROTO}`;
}

/**
 * sluice's own kernel routes now: dst → "tunnel <endpoint>" or "direct <gateway> <dev>".
 * Read from the text form: `ip -j route` of iproute2 6.1 prints an encap route's outer
 * `dst` under the same key as the route's own dst, losing the prefix.
 */
function installedRoutes(): Map<string, string> {
  const out = new Map<string, string>();
  const text = run('ip', ['route', 'show', 'table', 'main', 'proto', String(SLUICE_RT_PROTO)], { allowFail: true }).stdout;
  for (const line of text.split('\n')) {
    const words = line.trim().split(/\s+/);
    if (!words[0]) continue;
    const after = (w: string, from = 0) => {
      const i = words.indexOf(w, from);
      return i >= 0 ? words[i + 1] ?? '' : '';
    };
    const encap = words.indexOf('encap');
    out.set(words[0], encap >= 0 ? `tunnel ${after('dst', encap)}` : `direct ${after('via')} ${after('dev')}`);
  }
  return out;
}

/**
 * The routing plan's entries plus every feature's contributions. A contributed entry inside
 * a remote pod block (a pod's /32, a CIDR identity) takes the block's path, so the longest
 * match still knows how to reach it; the plan's own entries win on the same prefix.
 */
export function mergeIpcache(plan: ReadonlyMap<string, IpcacheEntry>, contributions: ReadonlyMap<string, ReadonlyMap<string, IpcacheEntry>>): Map<string, IpcacheEntry> {
  const out = new Map(plan);
  const blocks = [...plan].map(([c, e]) => ({ cidr: parseCidr(c), e }));
  for (const entries of contributions.values()) {
    for (const [c, e] of entries) {
      const cidr = parseCidr(c);
      const within = blocks.filter((b) => cidrWithin(cidr, b.cidr)).sort((a, b) => b.cidr.prefix - a.cidr.prefix)[0];
      const merged = within ? { ...e, tunnel_endpoint: within.e.tunnel_endpoint, flags: within.e.flags } : e;
      const have = out.get(c);
      if (have && plan.has(c)) out.set(c, { ...have, identity: e.identity || have.identity });
      else out.set(c, merged);
    }
  }
  return out;
}

export class RoutingFeature implements AgentFeature {
  readonly name = 'routing';
  private unwatch: Unwatch | undefined;
  lastPlan: RoutePlan | undefined;
  /**
   * When sl_ipcache needs merging and writing, reading back or nothing, and what it must hold
   * while the plan and the contributions stay the same (created at the first pass).
   */
  private ipcacheSync: MapSync<ReadonlyMap<string, IpcacheEntry>> | undefined;

  /** The devices and programs of this node's cross-node paths; returns what it changed. */
  private ensureDevices(cfg: Config): string[] {
    const changed: string[] = [];
    const u = underlayOf(cfg);
    const vx = ensureVxlan(uplinkMtu(cfg) - VXLAN_OVERHEAD);
    if (vx.created) changed.push(`created ${VXLAN_DEV}`);
    const uplink = u.uplink ? getLink(u.uplink) : undefined;
    for (const a of attachmentsOf({ owner: 'routing' })) {
      if (a.role !== 'overlay' && a.role !== 'uplink') continue;
      const dev = a.role === 'overlay' ? vx.link : uplink;
      if (!dev) continue;
      // A pinned link is kept when it runs this build's program; after a reload (an
      // upgrade) it still runs the old one, with the old maps: its program is replaced.
      const link = vx.created ? undefined : linked(cfg, a.role, dev.name, a.program);
      if (link && link.kind !== 'cgroup' && link.ifindex === dev.ifindex && link.programId === programId(cfg, a.program)) continue;
      attach(cfg, a.role, dev, a.program);
      changed.push(`attached ${a.program} to ${dev.name}`);
    }
    const want = { vxlan_ifindex: vx.link.ifindex, uplink_ifindex: uplink?.ifindex ?? 0, underlay_ip: u.ip || '0.0.0.0', flags: 0 };
    const have = readNodeConfig(cfg);
    if (JSON.stringify(have) !== JSON.stringify(want)) {
      writeNodeConfig(cfg, want);
      changed.push(`sl_node: vxlan ifindex ${want.vxlan_ifindex}, uplink ifindex ${want.uplink_ifindex}, underlay ${want.underlay_ip}`);
    }
    return changed;
  }

  async start(ctx: AgentContext): Promise<void> {
    this.unwatch = await ctx.node.store.watch(NODES, () => ctx.scheduleReconcile('a node record changed'));
    // The start pass read sl_ipcache back already: this one writes only what changed since.
    for (const c of (await this.reconcile(ctx, { driftCheck: false })).changed) ctx.log(`routing: ${c}`);
  }

  async reconcile(ctx: AgentContext, pass: ReconcilePass = { driftCheck: false }): Promise<FeatureReport> {
    const { cfg, node } = ctx;
    const report: FeatureReport = { changed: [], problems: [] };
    const u = underlayOf(cfg);
    const { records, problems: bad } = parseRecords(await node.store.list(NODES), parseNodeRecord);
    report.problems.push(...bad);
    const self = { name: cfg.nodeName, podCIDR: ctx.init.podCIDR, underlayIP: u.ip, subnet: u.subnet };
    if (!u.ip && records.some((r) => r.name !== cfg.nodeName)) {
      report.problems.push(`this node has no underlay address (uplink ${u.uplink || 'none'}): other nodes' pods are unreachable`);
    }
    const plan = planRoutes(self, cfg.mode, records, listRoutes(), cfg.clusterCIDR);
    this.lastPlan = plan;
    report.problems.push(...plan.problems);
    // sl_nodes before the programs: after an upgrade, the first program that checks the
    // overlay's sources finds the cluster's nodes already there, and drops none of theirs.
    const nd = syncNodes(cfg, plan.nodes);
    report.changed.push(...nd.added.map((ip) => `nodes +${ip}`), ...nd.changed.map((ip) => `nodes ~${ip}`), ...nd.removed.map((ip) => `nodes -${ip}`));
    // The masquerade settings before to_netdev is attached: it translates from its first packet.
    const masq = planMasquerade(cfg, { uplinkIp: u.ip, localPorts: localPortRange(), vxlanPort: VXLAN_PORT });
    report.problems.push(...masq.problems);
    report.changed.push(...syncMasquerade(cfg, masq));
    report.changed.push(...this.ensureDevices(cfg));

    // Kernel routes first (new and changed), then the ipcache, then stale routes.
    const have = installedRoutes();
    const lines: string[] = [];
    const wanted = new Set<string>();
    for (const r of plan.routes) {
      wanted.add(r.dst);
      const sig = r.path === 'tunnel' ? `tunnel ${r.via}` : `direct ${r.via} ${u.uplink}`;
      if (have.get(r.dst) === sig) continue;
      if (r.path === 'direct' && !u.uplink) continue;
      if (r.path === 'tunnel' && !u.ip) continue;
      lines.push(routeLine(r, u.uplink, u.ip));
      report.changed.push(`route ${r.dst} ${r.path} via ${r.via}`);
    }
    try {
      ipBatch(lines);
    } catch (e) {
      report.problems.push(`installing routes: ${(e as Error).message}`);
    }
    const ipc = this.syncIpcache(ctx, plan, pass);
    report.changed.push(...ipc.changed);
    report.sync = { sl_ipcache: ipc.report };
    const stale = [...have.keys()].filter((dst) => !wanted.has(dst));
    try {
      ipBatch(stale.map((dst) => `route del ${dst} proto ${SLUICE_RT_PROTO}`));
      report.changed.push(...stale.map((d) => `route -${d}`));
    } catch (e) {
      report.problems.push(`removing stale routes: ${(e as Error).message}`);
    }
    report.changed.push(...(await this.alignMtus(ctx)));
    return report;
  }

  /**
   * sl_ipcache: the plan's entries and every feature's contribution, merged and written when
   * their fingerprint changed; read back and repaired when drift is suspected or a check is
   * due (map-sync.ts); otherwise left alone (at 50,000 CIDR identities a read-back costs
   * about half a second of CPU).
   */
  private syncIpcache(ctx: AgentContext, plan: RoutePlan, pass: ReconcilePass): { changed: string[]; report: MapSyncReport } {
    const fp = fingerprint({ format: 1, plan: plan.ipcache, contributions: new Map([...ctx.ipcache].map(([k, c]) => [k, c.fingerprint])) });
    this.ipcacheSync ??= new MapSync(IPCACHE_MAP.name, ctx.driftCheckMs);
    const d = this.ipcacheSync.decide(fp, IPCACHE_MAP.state(ctx.cfg), pass.driftCheck);
    const want = d.action === 'apply' ? mergeIpcache(plan.ipcache, new Map([...ctx.ipcache].map(([k, c]) => [k, c.entries]))) : this.ipcacheSync.wanted();
    if (d.action === 'skip' || !want) return { changed: [], report: d };
    let ipc: IpcacheChange;
    try {
      ipc = syncIpcache(ctx.cfg, want);
    } catch (e) {
      this.ipcacheSync.failed();
      throw e;
    }
    this.ipcacheSync.done(fp, IPCACHE_MAP.state(ctx.cfg), want);
    const changed = [...ipc.added.map((c) => `ipcache +${c}`), ...ipc.changed.map((c) => `ipcache ~${c}`), ...ipc.removed.map((c) => `ipcache -${c}`)];
    if (d.action === 'verify' && changed.length) changed.unshift(`sl_ipcache: drift repaired (${d.reason})`);
    return { changed, report: { ...d, written: ipc.added.length + ipc.changed.length, removed: ipc.removed.length } };
  }

  /** Pods made under another mode get this mode's MTU (both ends of the veth and the pod's routes). */
  private async alignMtus(ctx: AgentContext): Promise<string[]> {
    const want = podMtu(ctx.cfg);
    const changed: string[] = [];
    const { manager } = ctx.node;
    await manager.state.lockedAsync(async () => {
      for (const ep of manager.list()) {
        if (ep.state !== 'ready' || ep.mtu === want) continue;
        ipBatch([`link set ${ep.hostIfname} mtu ${want}`]);
        ipBatch([`link set ${ep.ifname} mtu ${want}`], ep.netns);
        manager.state.saveEndpoint({ ...ep, mtu: want });
        changed.push(`${ep.name} MTU ${ep.mtu} -> ${want}`);
      }
    });
    return changed;
  }

  routes(ctx: AgentContext) {
    return [
      {
        method: 'GET' as const, path: '/v1/nodes', handler: async (): Promise<NodesResponse> => {
          const { records } = parseRecords(await ctx.node.store.list(NODES), parseNodeRecord);
          const health = new Set((await ctx.node.store.list(HEALTH)).map((kv) => nodeOfHealthKey(kv.key)));
          const peers = new Map((this.lastPlan?.peers ?? []).map((p) => [p.name, p]));
          return {
            self: ctx.cfg.nodeName, mode: ctx.cfg.mode,
            nodes: records.map((r) => ({
              ...r, agentAlive: health.has(r.name),
              path: r.name === ctx.cfg.nodeName ? 'local' : peers.get(r.name)?.path ?? 'unknown',
              ...(peers.get(r.name)?.reason ? { reason: peers.get(r.name)!.reason } : {}),
            })),
            kernelRoutes: (this.lastPlan?.peers ?? []).filter((p) => p.source === 'kernel'),
          };
        },
      },
      { method: 'GET' as const, path: '/v1/ipcache', handler: async (): Promise<IpcacheResponse> => ({ entries: Object.fromEntries(readIpcache(ctx.cfg)) }) },
    ];
  }

  async stop(): Promise<void> {
    this.unwatch?.();
  }
}
