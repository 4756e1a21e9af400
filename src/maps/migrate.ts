/**
 * Map layouts across versions (docs/architecture.md, "Map layouts and upgrades").
 *
 * A pinned map is shared by every program of the node and outlives them, so a map whose
 * key or value layout changes is a new map: its name carries its layout from the second
 * one on (sl_ct, then sl_ct_v2). An upgrade loads the new datapath next to the old one:
 *   1. load: the new build pins its new maps (the unchanged ones are reused as they are);
 *      `migrateMaps` copies the old maps' entries into them, converted;
 *   2. attach: the new programs replace the old ones on every device; copy again, for what
 *      the old programs recorded in the meantime (entries the new map lacks);
 *   3. retire: once everything is attached (the agent's first pass), a last copy, and the
 *      old pins are removed. The kernel frees an old map with its last program.
 * Every versioned map has a migration here from its predecessor; a unit test holds the
 * C map list to that (test/unit/map-layouts.test.ts).
 */
import { existsSync, rmSync } from 'node:fs';
import { BpfError } from '../bpf/errors.js';
import { BpfMap, UpdateFlag } from '../bpf/map.js';
import type { Config } from '../config/config.js';
import { ENDPOINTS_MAP, readEndpoints } from './endpoints.js';
import { nodePins } from '../datapath/pins.js';

/** What a conversion may ask about the node. */
export interface MigrationEnv {
  /** The endpoint id of a pod address of this node (0: none). */
  endpointOf(ip: string): number;
}

export interface Migration {
  from: string;
  to: string;
  /** What the new entries' fields the old ones lack are set to, and why (for the docs). */
  note: string;
  /** The new entry of an old one; undefined drops it. `blank` is the new value type at zero. */
  convert(key: unknown, value: unknown, blank: unknown, env: MigrationEnv): [unknown, unknown] | undefined;
}

type Fields = Record<string, unknown>;

const EEXIST = 17;

/** `blank` with every field `old` has too (by name), recursively; the rest stays zero. */
export function byName(old: unknown, blank: unknown): unknown {
  if (Array.isArray(blank)) {
    return Array.isArray(old) ? blank.map((b, i) => (i < old.length ? byName(old[i], b) : b)) : blank;
  }
  if (blank !== null && typeof blank === 'object' && !Buffer.isBuffer(blank)) {
    if (old === null || typeof old !== 'object' || Array.isArray(old)) return blank;
    const out: Fields = { ...(blank as Fields) };
    for (const k of Object.keys(out)) if (k in (old as Fields)) out[k] = byName((old as Fields)[k], out[k]);
    return out;
  }
  return typeof old === typeof blank ? old : blank;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    from: 'sl_ct',
    to: 'sl_ct_v2',
    note: 'each flow gets the endpoints of this node its addresses belong to now (src_ep, dst_ep) and no translation (nat 0); state, expiry, counters and policy are kept',
    convert(key, value, blank, env) {
      const k = key as { saddr: string; daddr: string };
      return [key, { ...(byName(value, blank) as Fields), src_ep: env.endpointOf(k.saddr), dst_ep: env.endpointOf(k.daddr), nat: 0 }];
    },
  },
];

export interface MigrationReport {
  from: string;
  to: string;
  /** Entries written into the new map. */
  copied: number;
  /** Entries the new map had already (the new programs' own are kept). */
  kept: number;
  dropped: number;
  /** The old pin was removed. */
  retired: boolean;
  /** Why the copy stopped (the old pin is kept then). */
  error?: string;
}

function pinnedEndpoints(cfg: Pick<Config, 'pinRoot'>): MigrationEnv {
  const ids = new Map<string, number>();
  if (ENDPOINTS_MAP.pinned(cfg)) for (const [ip, v] of readEndpoints(cfg)) ids.set(ip, v.id);
  return { endpointOf: (ip) => ids.get(ip) ?? 0 };
}

/**
 * Copies what the old maps of this node hold into their successors (both must be pinned),
 * never over an entry the successor has; with `retire`, then removes the old pins.
 */
export function migrateMaps(cfg: Pick<Config, 'pinRoot'>, o: { retire?: boolean } = {}): MigrationReport[] {
  const pins = nodePins(cfg);
  const due = MIGRATIONS.filter((m) => existsSync(pins.map(m.from)) && existsSync(pins.map(m.to)));
  if (due.length === 0) return [];
  const env = pinnedEndpoints(cfg);
  return due.map((mig) => {
    const report: MigrationReport = { from: mig.from, to: mig.to, copied: 0, kept: 0, dropped: 0, retired: false };
    try {
      copy(mig, pins.map(mig.from), pins.map(mig.to), env, report);
    } catch (e) {
      report.error = (e as Error).message;
      return report;
    }
    if (o.retire) {
      rmSync(pins.map(mig.from), { force: true });
      report.retired = true;
    }
    return report;
  });
}

/** Copies `fromPin`'s entries into `toPin` through `mig`, counting into `report`. */
function copy(mig: Migration, fromPin: string, toPin: string, env: MigrationEnv, report: MigrationReport): void {
  const from = BpfMap.openPinned(fromPin);
  let to: BpfMap | undefined;
  try {
    to = BpfMap.openPinned(toPin);
    const blank = to.value.decode(Buffer.alloc(to.valueBufSize));
    for (const [k, v] of from.entries()) {
      const next = mig.convert(k, v, blank, env);
      if (!next) { report.dropped++; continue; }
      try {
        to.updateRaw(to.encodeKey(next[0]), to.encodeValue(next[1]), UpdateFlag.NoExist);
        report.copied++;
      } catch (e) {
        if (!(e instanceof BpfError) || e.errno !== EEXIST) throw e;
        report.kept++; // the new programs' own entry, or one copied before
      }
    }
  } finally {
    from.close();
    to?.close();
  }
}

/** One line per migration, for logs. */
export function describeMigration(r: MigrationReport): string {
  return `${r.from} -> ${r.to}: ${r.copied} entries copied${r.kept ? `, ${r.kept} already there` : ''}${r.dropped ? `, ${r.dropped} dropped` : ''}${r.retired ? `; ${r.from} removed` : ''}${r.error ? `; stopped: ${r.error} (${r.from} is kept)` : ''}`;
}

/** The reports of two passes over the same migrations, summed. */
export function mergeReports(a: readonly MigrationReport[], b: readonly MigrationReport[]): MigrationReport[] {
  const out = new Map(a.map((r) => [`${r.from}>${r.to}`, { ...r }]));
  for (const r of b) {
    const o = out.get(`${r.from}>${r.to}`);
    if (!o) out.set(`${r.from}>${r.to}`, { ...r });
    else Object.assign(o, { copied: o.copied + r.copied, kept: r.kept, dropped: o.dropped + r.dropped, retired: o.retired || r.retired, ...(r.error ? { error: r.error } : {}) });
  }
  return [...out.values()];
}
