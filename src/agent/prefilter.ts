/**
 * The prefilter as an agent feature (docs/prefilter.md):
 *   start      attaches xdp_prefilter to the uplink (driver mode if the driver takes it,
 *              else generic), makes sl_prefilter equal to the store, watches the prefilter's
 *              store keys
 *   reconcile  the same again: re-attaches a detached program, swaps in a new build,
 *              moves to a new uplink, adds missing and deletes extra map entries
 *   routes     GET /v1/prefilter, POST /v1/prefilter/add {cidrs}, POST /v1/prefilter/del {cidrs}
 *   stop       stops watching; the program stays attached and keeps filtering
 * Map updates are serialised, so a request and a reconciliation never interleave.
 */
import { uplinkName } from '../endpoint/mtu.js';
import { PrefilterInputError, describeDiff } from '../prefilter/cidr.js';
import { readPrefilterRules } from '../maps/prefilter.js';
import { readPrefilterCounters } from '../maps/prefilter-counters.js';
import { syncRules } from '../prefilter/datapath.js';
import { attachPrefilter, detachPrefilter, pinnedDevices, xdpAttachment } from '../prefilter/attach.js';
import { ifindexOf } from '../net/ifindex.js';
import { prefilterAdd, prefilterDel, prefilterList } from '../prefilter/service.js';
import { listEntries } from '../prefilter/store.js';
import { PREFILTER_PREFIX } from '../store/keys.js';
import type { Unwatch } from '../store/types.js';
import { Serial } from '../util/serial.js';
import { ApiError } from './errors.js';
import type { AgentContext, AgentFeature, FeatureReport } from './feature.js';
import type { Route } from './server.js';
import { object } from './validate.js';

export class PrefilterFeature implements AgentFeature {
  readonly name = 'prefilter';
  private unwatch: Unwatch | undefined;
  /** Map updates one at a time, so a request and a reconciliation never interleave. */
  private readonly serial = new Serial();
  /** The uplink the program runs on (undefined: none found). */
  private device: string | undefined;
  /** The last "no uplink" note logged, so it is logged once and not every pass. */
  private lastNote: string | undefined;

  async start(ctx: AgentContext): Promise<void> {
    const r = await this.serial.run(() => this.converge(ctx));
    for (const c of r.changed) ctx.log(`prefilter: ${c}`);
    const a = this.device ? xdpAttachment(ctx.cfg, this.device) : undefined;
    if (a) ctx.log(`prefilter: xdp_prefilter on ${a.device} in ${a.mode} mode, ${readPrefilterRules(ctx.cfg).size} denied CIDR(s)`);
    for (const p of r.problems) ctx.log(`prefilter: ${p} (tried again at the next reconciliation)`);
    this.unwatch = await ctx.node.store.watch(PREFILTER_PREFIX, () => ctx.scheduleReconcile('prefilter change'));
    ctx.registry.collect('sluice_prefilter_packets_total', 'Packets the XDP prefilter dropped on this node, by denied CIDR', 'counter',
      () => this.samples(ctx, 'sluice_prefilter_packets_total', 'packets'));
    ctx.registry.collect('sluice_prefilter_bytes_total', 'Bytes the XDP prefilter dropped on this node, by denied CIDR', 'counter',
      () => this.samples(ctx, 'sluice_prefilter_bytes_total', 'bytes'));
  }

  reconcile(ctx: AgentContext): Promise<FeatureReport> {
    return this.serial.run(() => this.converge(ctx));
  }

  async stop(): Promise<void> {
    this.unwatch?.();
    this.unwatch = undefined;
    await this.serial.idle();
  }

  routes(ctx: AgentContext): Route[] {
    const apply = () => this.serial.run(async () => {
      const r = await this.converge(ctx);
      for (const c of r.changed) ctx.log(`prefilter: ${c}`);
      return true;
    });
    const input = async <T>(fn: () => Promise<T>): Promise<T> => {
      try {
        return await fn();
      } catch (e) {
        if (e instanceof PrefilterInputError) throw new ApiError(400, 'invalid_request', e.message);
        throw e;
      }
    };
    const cidrs = (raw: unknown) => object(raw).cidrs;
    return [
      { method: 'GET', path: '/v1/prefilter', handler: async () => prefilterList(ctx.cfg, ctx.node.store, this.device) },
      { method: 'POST', path: '/v1/prefilter/add', handler: (b) => input(() => prefilterAdd(ctx.cfg, ctx.node.store, cidrs(b), apply)) },
      { method: 'POST', path: '/v1/prefilter/del', handler: (b) => input(() => prefilterDel(ctx.cfg, ctx.node.store, cidrs(b), apply)) },
    ];
  }

  private samples(ctx: AgentContext, name: string, field: 'packets' | 'bytes') {
    const counters = readPrefilterCounters(ctx.cfg);
    return [...readPrefilterRules(ctx.cfg)].map(([cidr, r]) => ({ name, labels: { cidr }, value: counters.get(r.id)?.[field] ?? 0 }));
  }

  /**
   * One pass: the program on the uplink (and nowhere else) while there is a denied CIDR,
   * on no device while there is none (XDP on a device is not free: on a veth it turns the
   * peer's GSO off), then the map.
   */
  private async converge(ctx: AgentContext): Promise<FeatureReport> {
    const changed: string[] = [];
    const problems: string[] = [];
    const { cfg } = ctx;
    const entries = await listEntries(ctx.node.store);

    let device: string | undefined;
    try {
      device = uplinkName(cfg);
    } catch (e) {
      problems.push(`finding the uplink: ${(e as Error).message}`);
    }
    if (device && !ifindexOf(device)) {
      if (cfg.uplink !== 'auto') problems.push(`uplink device '${device}' does not exist in this network namespace: the prefilter is not attached`);
      device = undefined;
    } else if (!device && cfg.uplink === 'auto') {
      const note = 'no uplink (no default route): the prefilter is not attached; denied CIDRs are kept in sl_prefilter';
      if (this.lastNote !== note) ctx.log(`prefilter: ${note}`);
      this.lastNote = note;
    }
    if (device) this.lastNote = undefined;
    this.device = device;
    const wanted = entries.length > 0 ? device : undefined;

    // A link left on a device that is gone, or that is no longer the uplink.
    for (const d of pinnedDevices(cfg)) {
      if (d === wanted || (!device && ifindexOf(d) && entries.length > 0)) continue;
      try {
        detachPrefilter(cfg, d);
        changed.push(`detached xdp_prefilter from ${d} (${!ifindexOf(d) ? 'device gone' : d !== device ? 'no longer the uplink' : 'no denied CIDR left'})`);
      } catch (e) {
        problems.push(`detaching from ${d}: ${(e as Error).message}`);
      }
    }
    if (wanted) {
      try {
        const a = attachPrefilter(cfg, wanted);
        if (a.action === 'attached') {
          changed.push(`attached xdp_prefilter to ${wanted} in ${a.mode} mode${a.driverError ? ` (driver mode refused: ${a.driverError})` : ''}`);
        } else if (a.action === 'replaced') changed.push(`replaced the program on ${wanted} with the current build (id ${a.programId})`);
      } catch (e) {
        problems.push(`attaching to ${wanted}: ${(e as Error).message}`);
      }
    }

    try {
      changed.push(...describeDiff(syncRules(cfg, entries)).map((c) => `sl_prefilter: ${c}`));
    } catch (e) {
      problems.push(`sl_prefilter: ${(e as Error).message}`);
    }
    return { changed, problems };
  }
}
