/**
 * The node agent: owns the node's maps and endpoints, serves the API on
 * <runDir>/agent.sock (the CLI and the CNI plugin use it), reconciles at start, on a
 * timer and when the store says this node's addresses changed, keeps the node's record
 * alive in the store, and exposes Prometheus metrics.
 *
 * The datapath outlives it: a SIGKILL leaves pinned maps and attached programs
 * forwarding, and the next start adopts them (no reload when the build is unchanged, no
 * map flush). stop() (SIGTERM) closes the sockets and the store and touches nothing else.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type { AgentStatus } from '../api/types.js';
import type { Config } from '../config/config.js';
import type { PodPort } from '../endpoint/ports.js';
import { describeMigration, migrateMaps } from '../maps/migrate.js';
import { readMetrics } from '../maps/metrics.js';
import { FILL_WATCHED_MAPS } from '../maps/registry.js';
import { tryLockFile, type FileLock } from '../util/lock.js';
import { openNode, type NodeHandle } from '../node/context.js';
import { initNode, type InitResult } from '../node/node.js';
import { underlayOf, type NodeRecord } from '../node/underlay.js';
import { getLink } from '../net/ip.js';
import { handleOfKey, healthKey, nodeHandlesPrefix, nodeKey } from '../store/keys.js';
import { StoreError, type Lease, type Unwatch } from '../store/types.js';
import { cniAdd, cniCheck, cniDel, cniGc, endpointProblems } from './cni.js';
import { ApiError, apiError } from './errors.js';
import { Registry, serveMetrics } from './metrics.js';
import type { AgentContext, AgentFeature, FeatureReport } from './feature.js';
import type { SyncAction } from './map-sync.js';
import { agentFeatures } from './features.js';
import { emptyReport, reconcile, type ReconcileReport } from './reconcile.js';
import { ApiServer, type Route } from './server.js';
import { invalid, object, optLabels, optStr, str } from './validate.js';
import { logList } from './log-list.js';

export interface AgentOptions {
  /** Periodic reconciliation (default 30 s; 0 disables the timer). */
  reconcileIntervalMs?: number;
  /**
   * How often a pass whose inputs did not change still reads sl_policy and sl_ipcache back
   * to repair drift (default 5 minutes; 0: every pass). See map-sync.ts.
   */
  driftCheckIntervalMs?: number;
  /** TTL of the node's record in the store (default 15 s). */
  nodeTtlSeconds?: number;
  /** Where log lines go (default stderr). */
  log?: (line: string) => void;
  cacheDir?: string;
}

/** The files of a node's agent. */
export function agentPaths(cfg: Pick<Config, 'runDir'>): { socket: string; lock: string } {
  return { socket: join(cfg.runDir, 'agent.sock'), lock: join(cfg.runDir, 'agent.lock') };
}

/** Default of AgentOptions.driftCheckIntervalMs. */
export const DEFAULT_DRIFT_CHECK_MS = 5 * 60_000;

/** Metric label of each sync action. */
const SYNC_LABEL: Record<SyncAction, string> = { skip: 'skipped', apply: 'applied', verify: 'verified' };

export class Agent {
  private node: NodeHandle | undefined;
  private lock: FileLock | undefined;
  private api: ApiServer | undefined;
  private metricsServer: { address: string; close(): Promise<void> } | undefined;
  private lease: Lease | undefined;
  private unwatch: Unwatch | undefined;
  private timer: NodeJS.Timeout | undefined;
  private pending: NodeJS.Timeout | undefined;
  private running: Promise<ReconcileReport> | undefined;
  private queued: { full: boolean; driftCheck: boolean; promise: Promise<ReconcileReport> } | undefined;
  private stopping = false;
  private pendingFull = false;
  private readonly startedAt = new Date().toISOString();
  private readonly features: AgentFeature[] = agentFeatures();
  private ctx: AgentContext | undefined;
  private readonly registry = new Registry();
  private readonly m = {
    reconciles: this.registry.counter('sluice_agent_reconciles_total', 'Reconciliations run, by result'),
    reconcileSeconds: this.registry.summary('sluice_agent_reconcile_duration_seconds', 'Time taken by reconciliations'),
    repairs: this.registry.counter('sluice_agent_reconcile_repairs_total', 'Things a reconciliation repaired, by kind'),
    storeErrors: this.registry.counter('sluice_agent_store_errors_total', 'Store operations that failed'),
    requests: this.registry.counter('sluice_agent_api_requests_total', 'API requests answered with an error, by route and code'),
    mapSyncs: this.registry.counter('sluice_agent_map_syncs_total',
      'What reconciliations did with each map kept in sync: skipped (inputs unchanged), applied (inputs changed: computed, read back, written) or verified (read back for drift)'),
    driftRepairs: this.registry.counter('sluice_agent_map_drift_repairs_total', 'Entries a drift check found wrong, missing or extra in a map, and repaired'),
  };
  initResult: InitResult | undefined;
  storeProblem: string | undefined;
  lastReconcile: ReconcileReport | undefined;
  metricsAddress: string | undefined;
  readonly socket: string;
  private readonly log: (line: string) => void;

  constructor(readonly cfg: Config, private readonly o: AgentOptions = {}) {
    this.socket = agentPaths(cfg).socket;
    this.log = o.log ?? ((l) => process.stderr.write(`${new Date().toISOString()} sluice-agent[${cfg.nodeName}]: ${l}\n`));
  }

  get ready(): boolean {
    return this.initResult !== undefined && !this.stopping && this.storeProblem === undefined;
  }

  async start(): Promise<void> {
    const paths = agentPaths(this.cfg);
    this.lock = tryLockFile(paths.lock);
    if (!this.lock) throw new Error(`another sluice agent is running for node ${this.cfg.nodeName} (it holds ${paths.lock})`);
    try {
      this.node = await openNode(this.cfg);
      this.initResult = await initNode(this.node, { cacheDir: this.o.cacheDir });
      const r = this.initResult;
      this.log(`node ${r.node}: pod block ${r.podCIDR}, ${r.adopted ? 'adopted the pinned datapath' : `loaded ${r.programs.length} programs`}, ${r.reattached} endpoint(s) attached`);
      for (const m of r.migrated) this.log(`map layout upgrade: ${describeMigration(m)}`);
      await this.registerNode();
      this.ctx = {
        cfg: this.cfg, node: this.node, init: r, registry: this.registry, log: (l) => this.log(l),
        // A feature's trigger (a store change) concerns the features, not the endpoints.
        scheduleReconcile: (why) => this.scheduleReconcile(why, 500, true),
        ipcache: new Map(),
        driftCheckMs: this.o.driftCheckIntervalMs ?? DEFAULT_DRIFT_CHECK_MS,
      };
      await this.reconcileNow('start', { driftCheck: true });
      for (const f of this.features) await f.start?.(this.ctx);
      // Every device runs the new programs now: the old-layout maps can go.
      for (const m of migrateMaps(this.cfg, { retire: true })) this.log(`map layout upgrade: ${describeMigration(m)}`);
      const ctx = this.ctx;
      this.node.manager.admission = {
        admit: async (ep) => {
          const out: { identity?: number } = {};
          // Each feature sees what the ones before it admitted (policy: the identity).
          for (const f of this.features) if (f.admit) Object.assign(out, await f.admit(ctx, { ...ep, ...out }));
          return out;
        },
        forget: (ep) => {
          for (const f of this.features) f.forget?.(ctx, ep);
        },
      };
      // An address record of a ready endpoint deleted by someone else means it lost its
      // address (our own deletes mark the endpoint 'deleting' before releasing it).
      this.unwatch = await this.node.store.watch(nodeHandlesPrefix(this.cfg.nodeName), (e) => {
        if (e.type !== 'delete') return;
        const handle = handleOfKey(e.key);
        if (this.node?.manager.list().some((ep) => ep.handle === handle && ep.state === 'ready')) this.scheduleReconcile('an address record was deleted');
      });
      this.setupMetrics();
      this.api = new ApiServer(this.routes(), (route, e) => {
        this.m.requests.inc({ route, code: e.code });
        if (e.code === 'unavailable') this.m.storeErrors.inc();
        if (e.status >= 500) this.log(`${route}: ${e.code}: ${e.message}`);
      });
      await this.api.listen(this.socket);
      if (this.cfg.metricsAddress !== 'off') {
        this.metricsServer = await serveMetrics(this.registry, this.cfg.metricsAddress);
        this.metricsAddress = this.metricsServer.address;
      }
      const every = this.o.reconcileIntervalMs ?? 30_000;
      if (every > 0) this.timer = setInterval(() => this.scheduleReconcile('timer', 0), every);
      this.log(`ready: API on ${this.socket}${this.metricsAddress ? `, metrics on http://${this.metricsAddress}/metrics` : ''}, store ${this.node.store.description}`);
    } catch (e) {
      await this.stop();
      throw e;
    }
  }

  /** Closes the API, the metrics endpoint, the watch and the store; the datapath stays as it is. */
  async stop(): Promise<void> {
    this.stopping = true;
    clearInterval(this.timer);
    clearTimeout(this.pending);
    await this.api?.close().catch(() => {});
    if (this.api) rmSync(this.socket, { force: true });
    await this.metricsServer?.close().catch(() => {});
    this.unwatch?.();
    await this.queued?.promise.catch(() => {});
    await this.running?.catch(() => {});
    for (const f of [...this.features].reverse()) await f.stop?.().catch((e: Error) => this.log(`stopping ${f.name}: ${e.message}`));
    // The node's record stays until its lease expires: a restart does not look like a node leaving.
    this.lease?.release();
    await this.node?.close().catch(() => {});
    this.lock?.release();
    this.api = this.metricsServer = this.unwatch = this.lease = this.node = this.lock = undefined;
  }

  /**
   * Publishes the node: its node record (pod block, underlay address and subnet, mode), which
   * stays while the node exists so peers keep routing to its pods while the agent restarts,
   * and its health record on a lease (pid, start time), which says the agent is alive.
   */
  private async registerNode(): Promise<void> {
    const node = this.node!;
    const u = underlayOf(this.cfg);
    const mac = u.uplink ? getLink(u.uplink)?.mac : undefined;
    const rec: NodeRecord = {
      name: this.cfg.nodeName, podCIDR: this.initResult!.podCIDR, underlayIP: u.ip, subnet: u.subnet,
      ...(mac && u.ip ? { underlayMAC: mac } : {}), mode: this.cfg.mode, updated: new Date().toISOString(),
    };
    const key = nodeKey(this.cfg.nodeName);
    const old = await node.store.get(key);
    const same = old && JSON.stringify({ ...(JSON.parse(old.value) as NodeRecord), updated: '' }) === JSON.stringify({ ...rec, updated: '' });
    if (!same) await node.store.put(key, JSON.stringify(rec));
    await this.registerHealth();
  }

  private async registerHealth(): Promise<void> {
    const node = this.node!;
    const lease = await node.store.grantLease(this.o.nodeTtlSeconds ?? 15);
    await node.store.put(healthKey(this.cfg.nodeName), JSON.stringify({ name: this.cfg.nodeName, pid: process.pid, started: this.startedAt }), lease.id);
    lease.onLost((e) => {
      if (this.stopping) return;
      this.m.storeErrors.inc();
      this.log(`the agent's health lease in the store was lost (${e.message}); registering again`);
      const retry = () => {
        if (this.stopping) return;
        this.registerHealth().catch((err: Error) => {
          this.log(`registering the agent's health failed: ${err.message}; retrying in 2 s`);
          setTimeout(retry, 2000).unref();
        });
      };
      retry();
    });
    this.lease = lease;
  }

  /**
   * Runs a reconciliation as soon as the one running (if any) ends, and returns its report.
   * Requests made while one is waiting join it (a full one wins over features-only, a drift
   * check over none), so a change seen during a run is never lost and runs never overlap.
   * `featuresOnly`: the endpoints are in order, only the features run; `driftCheck`: the
   * features read their maps back whether or not a check is due.
   */
  reconcileNow(why: string, o: { featuresOnly?: boolean; driftCheck?: boolean } = {}): Promise<ReconcileReport> {
    const featuresOnly = o.featuresOnly ?? false;
    const driftCheck = o.driftCheck ?? false;
    if (this.queued) {
      if (!featuresOnly) this.queued.full = true;
      if (driftCheck) this.queued.driftCheck = true;
      return this.queued.promise;
    }
    const q = { full: !featuresOnly, driftCheck, promise: Promise.resolve(undefined as unknown as ReconcileReport) };
    const before = this.running ?? Promise.resolve(undefined);
    q.promise = before.catch(() => undefined).then(() => {
      this.queued = undefined;
      const run = this.runOnce(why, !q.full, q.driftCheck);
      this.running = run;
      return run.finally(() => {
        if (this.running === run) this.running = undefined;
      });
    });
    this.queued = q;
    return q.promise;
  }

  private runOnce(why: string, featuresOnly: boolean, driftCheck: boolean): Promise<ReconcileReport> {
    return (async () => {
      if (this.stopping || !this.node) return emptyReport();
      const started = performance.now();
      try {
        // After an add or delete the endpoints themselves are in order: only the features
        // (identities, policy, routes) need to follow, not a full pass over every endpoint.
        const r = featuresOnly ? emptyReport() : await reconcile(this.node!);
        for (const f of this.features) {
          if (!f.reconcile || !this.ctx) continue;
          try {
            const fr = await f.reconcile(this.ctx, { driftCheck });
            r.features[f.name] = fr;
            r.problems.push(...fr.problems.map((p) => `${f.name}: ${p}`));
            this.countSyncs(fr);
            if (fr.changed.length) this.log(`reconcile (${why}): ${f.name}: ${logList(fr.changed)}`);
          } catch (e) {
            r.problems.push(`${f.name}: ${(e as Error).message}`);
          }
        }
        r.durationMs = performance.now() - started;
        this.lastReconcile = r;
        this.m.reconciles.inc({ result: r.problems.length ? 'incomplete' : 'ok' });
        this.m.reconcileSeconds.observe(r.durationMs / 1000);
        const repaired: [string, string[]][] = [
          ['finished', r.finished], ['collected', r.collected], ['map_entry', r.repairedEntries], ['reattached', r.reattached],
          ['reclaimed', r.reclaimed], ['stale_entry', r.staleEntries], ['released_address', r.releasedHandles], ['stray', r.strays],
        ];
        for (const [kind, list] of repaired) {
          if (list.length) {
            this.m.repairs.inc({ kind }, list.length);
            this.log(`reconcile (${why}): ${kind.replace('_', ' ')}: ${logList(list)}`);
          }
        }
        const storeTrouble = r.problems.find((p) => /store|etcd/i.test(p));
        if (storeTrouble) this.m.storeErrors.inc();
        this.storeProblem = storeTrouble;
        if (r.problems.length) this.log(`reconcile (${why}) left problems: ${r.problems.join('; ')}`);
        return r;
      } catch (e) {
        if (e instanceof StoreError) {
          this.m.storeErrors.inc();
          this.storeProblem = e.message;
        }
        this.m.reconciles.inc({ result: 'failed' });
        this.log(`reconcile (${why}) failed: ${(e as Error).message}`);
        throw e;
      }
    })();
  }

  /** Counts what a feature's pass did with each map it keeps in sync (no log line: a skipped pass is silent). */
  private countSyncs(fr: FeatureReport): void {
    for (const [map, s] of Object.entries(fr.sync ?? {})) {
      this.m.mapSyncs.inc({ map, action: SYNC_LABEL[s.action] });
      const repaired = (s.written ?? 0) + (s.removed ?? 0);
      if (s.action === 'verify' && repaired) this.m.driftRepairs.inc({ map }, repaired);
    }
  }

  private scheduleReconcile(why: string, delayMs = 500, featuresOnly = false): void {
    if (this.stopping) return;
    if (!featuresOnly) this.pendingFull = true;
    if (this.pending) return;
    this.pending = setTimeout(() => {
      this.pending = undefined;
      const full = this.pendingFull;
      this.pendingFull = false;
      this.reconcileNow(why, { featuresOnly: !full }).catch(() => {});
    }, delayMs);
  }


  private status(): AgentStatus {
    const reason = this.stopping ? 'the agent is stopping' : this.storeProblem ? `store problem: ${this.storeProblem}` : undefined;
    const eps = this.node?.manager.list() ?? [];
    return {
      ready: this.ready,
      ...(reason ? { reason } : {}),
      node: this.cfg.nodeName,
      podCIDR: this.initResult?.podCIDR,
      store: this.node?.store.description,
      pid: process.pid,
      socket: this.socket,
      metrics: this.metricsAddress ?? null,
      endpoints: eps.length,
      datapath: this.initResult ? { adopted: this.initResult.adopted, programs: this.initResult.programs } : undefined,
      lastReconcile: this.lastReconcile ?? null,
    };
  }

  private routes(): Route[] {
    const node = () => {
      if (!this.node || this.stopping) throw new ApiError(503, 'not_ready', 'the sluice agent is stopping');
      return this.node;
    };
    // Errors from the store are answered as 'unavailable' and mark the store as unhealthy until a reconcile succeeds.
    const guarded = (fn: (b: unknown) => Promise<unknown>) => async (b: unknown) => {
      try {
        const r = await fn(b);
        this.storeProblem = undefined; // the store answered
        return r;
      } catch (e) {
        const err = apiError(e);
        if (err.code === 'unavailable') this.storeProblem = err.message;
        throw e;
      }
    };
    // An endpoint added or removed: identities, policy entries and published records follow soon.
    const changes = (fn: (b: unknown) => Promise<unknown>) => async (b: unknown) => {
      const r = await fn(b);
      this.scheduleReconcile('endpoints changed', 200, true);
      return r;
    };
    return [
      { method: 'GET', path: '/v1/status', handler: async () => this.status() },
      { method: 'POST', path: '/v1/cni/add', handler: changes(guarded((b) => cniAdd(node(), b))) },
      { method: 'POST', path: '/v1/cni/del', handler: changes(guarded((b) => cniDel(node(), b))) },
      { method: 'POST', path: '/v1/cni/check', handler: guarded((b) => cniCheck(node(), b)) },
      { method: 'POST', path: '/v1/cni/gc', handler: guarded((b) => cniGc(node(), b)) },
      { method: 'GET', path: '/v1/endpoints', handler: async () => ({ endpoints: node().manager.list() }) },
      {
        method: 'POST', path: '/v1/endpoints/add', handler: changes(guarded(async (raw) => {
          const b = object(raw);
          const labels = optLabels(b, 'labels');
          const ep = await node().manager.add({
            netns: str(b, 'netns'), name: optStr(b, 'name'), ip: optStr(b, 'ip'), ifname: optStr(b, 'ifname'),
            ...(b.ports !== undefined ? { ports: b.ports as PodPort[] } : {}),
            ...(labels ? { labels } : {}),
          });
          return { endpoint: ep };
        })),
      },
      {
        method: 'POST', path: '/v1/endpoints/label', handler: changes(guarded(async (raw) => {
          const b = object(raw);
          const set = optLabels(b, 'set') ?? {};
          const remove = Array.isArray(b.remove) && b.remove.every((x) => typeof x === 'string') ? (b.remove as string[]) : [];
          return { endpoint: await node().manager.relabel(str(b, 'ref'), set, remove) };
        })),
      },
      { method: 'POST', path: '/v1/endpoints/del', handler: changes(guarded(async (raw) => ({ endpoint: await node().manager.remove(str(object(raw), 'ref')) }))) },
      {
        method: 'POST', path: '/v1/endpoints/check', handler: guarded(async (raw) => {
          const ref = str(object(raw), 'ref');
          const ep = node().manager.find(ref);
          if (!ep) throw new ApiError(404, 'not_found', `no endpoint '${ref}' on node ${this.cfg.nodeName}`);
          const problems = await endpointProblems(node(), ep);
          return { ok: problems.length === 0, problems, endpoint: ep };
        }),
      },
      {
        // A drift check unless {"driftCheck": false} asks for a pass like the periodic one.
        method: 'POST', path: '/v1/reconcile', handler: guarded(async (raw) => {
          const b = raw === undefined ? {} : object(raw);
          if (b.driftCheck !== undefined && typeof b.driftCheck !== 'boolean') throw invalid('"driftCheck" must be true or false');
          return this.reconcileNow('request', { driftCheck: b.driftCheck !== false });
        }),
      },
      ...this.features.flatMap((f) => (this.ctx && f.routes ? f.routes(this.ctx) : [])),
    ];
  }

  private setupMetrics(): void {
    const cfg = this.cfg;
    this.registry.collect('sluice_datapath_packets_total', 'Packets the datapath handled, by reason and direction', 'counter',
      () => readMetrics(cfg).map((r) => ({ name: 'sluice_datapath_packets_total', labels: { reason: r.reason, direction: r.direction }, value: r.packets })));
    this.registry.collect('sluice_datapath_bytes_total', 'Bytes the datapath handled, by reason and direction', 'counter',
      () => readMetrics(cfg).map((r) => ({ name: 'sluice_datapath_bytes_total', labels: { reason: r.reason, direction: r.direction }, value: r.bytes })));
    this.registry.collect('sluice_map_entries', 'Entries in each pinned map', 'gauge', () => FILL_WATCHED_MAPS.map((def) =>
      ({ name: 'sluice_map_entries', labels: { map: def.name }, value: def.with(cfg, (m) => m.count()) })));
    this.registry.collect('sluice_map_max_entries', 'Capacity of each pinned map', 'gauge', () => FILL_WATCHED_MAPS.map((def) =>
      ({ name: 'sluice_map_max_entries', labels: { map: def.name }, value: def.with(cfg, (m) => m.info.maxEntries) })));
    this.registry.collect('sluice_endpoints', 'Endpoints on this node, by state', 'gauge', () => {
      const by = new Map<string, number>([['ready', 0], ['creating', 0], ['deleting', 0]]);
      for (const e of this.node?.manager.list() ?? []) by.set(e.state, (by.get(e.state) ?? 0) + 1);
      return [...by].map(([state, value]) => ({ name: 'sluice_endpoints', labels: { state }, value }));
    });
    this.registry.collect('sluice_agent_up', 'Whether the agent is ready (1) or not (0)', 'gauge',
      () => [{ name: 'sluice_agent_up', value: this.ready ? 1 : 0 }]);
  }
}
