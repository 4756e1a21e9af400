/**
 * sl_masq (the masquerade settings: one entry, key 0, __u32 → struct sl_masq_config) and
 * sl_nonmasq (the destinations never masqueraded: LPM trie, struct sl_nonmasq_key → struct
 * sl_nonmasq_entry), written by the routing feature (include/sluice/lib/masq.h).
 */
import type { Config } from '../config/config.js';
import { applyMapDiff, type MapDiff } from './diff.js';
import { MapDef } from './map.js';

export interface MasqConfigValue { addr: string; port_min: number; port_max: number; flags: number }

/** enum sl_masq_flags. */
export const MASQ_FLAGS = { none: 0, on: 1 } as const;

export const MASQ_MAP = new MapDef<number, MasqConfigValue>({
  name: 'sl_masq',
  key: { name: '__u32' },
  value: { name: 'sl_masq_config', fields: { addr: true, port_min: true, port_max: true, flags: true } },
});

export interface NonMasqKey { prefixlen: number; addr: string }

export const NONMASQ_MAP = new MapDef<NonMasqKey, { flags: number }>({
  name: 'sl_nonmasq',
  key: { name: 'sl_nonmasq_key', fields: { prefixlen: true, addr: true } },
  value: { name: 'sl_nonmasq_entry', fields: { flags: true } },
});

export function readMasqConfig(cfg: Pick<Config, 'pinRoot'>): MasqConfigValue | undefined {
  return MASQ_MAP.with(cfg, (m) => m.lookup(0));
}

export function writeMasqConfig(cfg: Pick<Config, 'pinRoot'>, v: MasqConfigValue): void {
  MASQ_MAP.with(cfg, (m) => m.update(0, v));
}

/** Every CIDR of sl_nonmasq ("10.244.0.0/16"). */
export function readNonMasq(cfg: Pick<Config, 'pinRoot'>): Set<string> {
  return NONMASQ_MAP.with(cfg, (m) => new Set([...m.keys()].map((k) => `${k.addr}/${k.prefixlen}`)));
}

/** Makes sl_nonmasq hold exactly `want` (CIDRs): new ones first, then the stale ones. */
export function syncNonMasq(cfg: Pick<Config, 'pinRoot'>, want: ReadonlySet<string>): MapDiff<string> {
  const have = new Map([...readNonMasq(cfg)].map((c) => [c, true]));
  const wantMap = new Map([...want].map((c) => [c, true]));
  const keyOf = (c: string): NonMasqKey => {
    const [addr, len] = c.split('/');
    return { addr: addr!, prefixlen: Number(len) };
  };
  return NONMASQ_MAP.with(cfg, (m) => applyMapDiff(have, wantMap, () => true, {
    write: (c) => m.update(keyOf(c), { flags: 0 }),
    remove: (c) => m.delete(keyOf(c)),
  }));
}
