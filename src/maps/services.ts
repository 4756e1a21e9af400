/**
 * The service maps (include/sluice/lib/service.h; docs/architecture.md, "Services"):
 *   sl_svc      HASH struct sl_svc_key (frontend address, port, protocol) → struct sl_svc_entry
 *               (the backend set's rev and count, flags, affinity seconds, the frontend's id)
 *   sl_svc_be   HASH struct sl_svc_be_key (rev, slot) → struct sl_svc_backend (address, port)
 *   sl_svc_aff  LRU struct sl_svc_aff_key (client, frontend) → struct sl_svc_aff (backend, expiry)
 * A frontend's backends change by a new set: its slots written under a new rev, then the
 * frontend's entry pointed at it (one update: a packet sees the old set or the new one,
 * never half of each), then the old set's slots deleted.
 */
import type { Config } from '../config/config.js';
import { MapDef } from './map.js';

export interface SvcKey { addr: string; port: number; protocol: number }
export interface SvcEntry { rev: number; count: number; flags: number; affinity: number; id: number }
export interface SvcBackendKey { rev: number; slot: number }
export interface SvcBackend { addr: string; port: number }
export interface SvcAffinityKey { client: string; addr: string; port: number; protocol: number }
export interface SvcAffinity { expires: bigint; addr: string; port: number }

/** enum sl_svc_flags. */
export const SVC_FLAGS = { none: 0, nodePort: 1, external: 2, local: 4 } as const;

export const SVC_MAP = new MapDef<SvcKey, SvcEntry>({
  name: 'sl_svc',
  key: { name: 'sl_svc_key', fields: { addr: true, port: true, protocol: true } },
  value: { name: 'sl_svc_entry', fields: { rev: true, count: true, flags: true, affinity: true, id: true } },
  watchFill: true,
});

export const SVC_BACKENDS_MAP = new MapDef<SvcBackendKey, SvcBackend>({
  name: 'sl_svc_be',
  key: { name: 'sl_svc_be_key', fields: { rev: true, slot: true } },
  value: { name: 'sl_svc_backend', fields: { addr: true, port: true } },
  watchFill: true,
});

export const SVC_AFFINITY_MAP = new MapDef<SvcAffinityKey, SvcAffinity>({
  name: 'sl_svc_aff',
  key: { name: 'sl_svc_aff_key', fields: { client: true, addr: true, port: true, protocol: true } },
  value: { name: 'sl_svc_aff', fields: { expires: true, addr: true, port: true } },
});

/** A frontend as the datapath should have it. */
export interface FrontendState {
  key: SvcKey;
  flags: number;
  /** Affinity seconds (0: none). */
  affinity: number;
  id: number;
  backends: readonly SvcBackend[];
}

/** A frontend as the datapath has it. */
export interface FrontendRead extends FrontendState { rev: number }

export const svcKeyText = (k: SvcKey): string => `${k.addr}:${k.port}/${k.protocol}`;
const backendText = (b: SvcBackend): string => `${b.addr}:${b.port}`;

/** Every frontend with its backend set, as the maps hold it. */
export function readFrontends(cfg: Pick<Config, 'pinRoot'>): FrontendRead[] {
  if (!SVC_MAP.pinned(cfg)) return [];
  return SVC_MAP.with(cfg, (svc) => SVC_BACKENDS_MAP.with(cfg, (be) => {
    const out: FrontendRead[] = [];
    for (const [key, e] of svc.entries()) {
      const backends: SvcBackend[] = [];
      for (let slot = 0; slot < e.count; slot++) {
        const b = be.lookup({ rev: e.rev, slot });
        if (b) backends.push(b);
      }
      out.push({ key, flags: e.flags, affinity: e.affinity, id: e.id, rev: e.rev, backends });
    }
    return out;
  }));
}

export interface FrontendSyncReport {
  added: number;
  changed: number;
  removed: number;
  unchanged: number;
  /** Affinity entries removed (their frontend or backend is gone). */
  affinityRemoved: number;
}

const sameFrontend = (a: FrontendRead, b: FrontendState): boolean =>
  a.flags === b.flags && a.affinity === b.affinity && a.id === b.id && a.backends.length === b.backends.length
  && a.backends.every((x, i) => backendText(x) === backendText(b.backends[i]!));

/**
 * Makes the maps hold exactly `want` (by svcKeyText): a changed frontend gets a new backend
 * set (new rev) before its entry points at it; the old set is deleted after. A removed
 * frontend's entry goes before its set. Affinity entries of a frontend or backend no longer
 * there are removed, so a client's affinity ends when its backend goes.
 */
export function syncFrontends(cfg: Pick<Config, 'pinRoot'>, want: ReadonlyMap<string, FrontendState>): FrontendSyncReport {
  const have = new Map(readFrontends(cfg).map((f) => [svcKeyText(f.key), f]));
  const report: FrontendSyncReport = { added: 0, changed: 0, removed: 0, unchanged: 0, affinityRemoved: 0 };
  let nextRev = 1;
  for (const f of have.values()) nextRev = Math.max(nextRev, f.rev + 1);
  SVC_MAP.with(cfg, (svc) => SVC_BACKENDS_MAP.with(cfg, (be) => {
    const dropSet = (rev: number, count: number) => {
      for (let slot = 0; slot < count; slot++) be.delete({ rev, slot });
    };
    for (const [k, w] of want) {
      const old = have.get(k);
      if (old && sameFrontend(old, w)) {
        report.unchanged++;
        continue;
      }
      let rev = 0;
      if (w.backends.length) {
        rev = nextRev++;
        w.backends.forEach((b, slot) => be.update({ rev, slot }, b));
      }
      svc.update(w.key, { rev, count: w.backends.length, flags: w.flags, affinity: w.affinity, id: w.id });
      if (old) {
        if (old.rev && old.rev !== rev) dropSet(old.rev, old.backends.length);
        report.changed++;
      } else report.added++;
    }
    for (const [k, old] of have) {
      if (want.has(k)) continue;
      svc.delete(old.key);
      if (old.rev) dropSet(old.rev, old.backends.length);
      report.removed++;
    }
  }));
  report.affinityRemoved = purgeAffinity(cfg, want);
  return report;
}

/** Removes the affinity entries whose frontend is not in `want` or whose backend is not among its backends. */
function purgeAffinity(cfg: Pick<Config, 'pinRoot'>, want: ReadonlyMap<string, FrontendState>): number {
  if (!SVC_AFFINITY_MAP.pinned(cfg)) return 0;
  return SVC_AFFINITY_MAP.with(cfg, (aff) => {
    let n = 0;
    for (const [k, v] of [...aff.entries()]) {
      const f = want.get(svcKeyText(k));
      const ok = f && f.affinity > 0 && f.backends.some((b) => b.addr === v.addr && b.port === v.port);
      if (!ok && aff.delete(k)) n++;
    }
    return n;
  });
}

/** Every client's affinity entry. */
export function readAffinity(cfg: Pick<Config, 'pinRoot'>): [SvcAffinityKey, SvcAffinity][] {
  if (!SVC_AFFINITY_MAP.pinned(cfg)) return [];
  return SVC_AFFINITY_MAP.with(cfg, (m) => [...m.entries()]);
}
