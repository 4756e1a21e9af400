/**
 * sl_nat: the NAT engine's translations (plain HASH, struct sl_nat_key → struct sl_nat_entry;
 * include/sluice/lib/nat.h). A translated flow is a pair: the forward entry (dir 0, egress:
 * the flow as the pod sends it → the source to write) and the reverse entry (dir 1,
 * ingress: the reply as it arrives → the pod's address and port to write back). The kernel
 * never evicts them; this module collects the pairs whose entries have both expired
 * (docs/architecture.md, "Masquerade (SNAT)").
 */
import type { Config } from '../config/config.js';
import { MapDef } from './map.js';

export interface NatKey { saddr: string; daddr: string; sport: number; dport: number; protocol: number; dir: number }
export interface NatEntry {
  /** bpf_ktime_get_ns() after which the entry is dead. */
  expires: bigint;
  packets: bigint;
  bytes: bigint;
  /** The address written into the packet (forward: the new source; reverse: the pod's). */
  addr: string;
  port: number;
  /** enum sl_nat_flags. */
  flags: number;
  /** enum sl_ct_state. */
  state: number;
}

/** enum sl_nat_flags. */
export const NAT_FLAGS = { none: 0, src: 1, masq: 2, reset: 4, svc: 8, hairpin: 16 } as const;
export const NAT_DIR = { forward: 0, reverse: 1 } as const;

export const NAT_MAP = new MapDef<NatKey, NatEntry>({
  name: 'sl_nat',
  key: { name: 'sl_nat_key', fields: { saddr: true, daddr: true, sport: true, dport: true, protocol: true, dir: true } },
  value: { name: 'sl_nat_entry', fields: { expires: true, packets: true, bytes: true, addr: true, port: true, flags: true, state: true } },
  watchFill: true,
});

/** One translated flow: its forward entry and the reverse entry it names (either may be missing in a half pair). */
export interface NatPair {
  key: NatKey;
  forward?: NatEntry;
  reverseKey: NatKey;
  reverse?: NatEntry;
}

const isSvc = (v: Pick<NatEntry, 'flags'>): boolean => (v.flags & NAT_FLAGS.svc) !== 0;

/**
 * The reverse key a forward entry names: a source translation's is the reply from the
 * destination to addr:port (ICMP echo: the identifier in both ports); a service's (the
 * destination translated to the backend addr:port) the backend's reply to the client. A
 * hairpin reply goes to the pod's gateway address, which the entry does not hold: pairsOf
 * finds such a pair from its reverse entry.
 */
export function reverseKeyOf(k: NatKey, v: Pick<NatEntry, 'addr' | 'port' | 'flags'>): NatKey {
  if (isSvc(v)) return { saddr: v.addr, daddr: k.saddr, sport: v.port, dport: k.sport, protocol: k.protocol, dir: NAT_DIR.reverse };
  return { saddr: k.daddr, daddr: v.addr, sport: k.protocol === 1 ? v.port : k.dport, dport: v.port, protocol: k.protocol, dir: NAT_DIR.reverse };
}

/** The forward key a reverse entry names. */
export function forwardKeyOf(k: NatKey, v: Pick<NatEntry, 'addr' | 'port' | 'flags'>): NatKey {
  if (isSvc(v)) {
    const client = v.flags & NAT_FLAGS.hairpin ? k.saddr : k.daddr;
    return { saddr: client, daddr: v.addr, sport: k.dport, dport: v.port, protocol: k.protocol, dir: NAT_DIR.forward };
  }
  return { saddr: v.addr, daddr: k.saddr, sport: v.port, dport: k.protocol === 1 ? v.port : k.sport, protocol: k.protocol, dir: NAT_DIR.forward };
}

const keyText = (k: NatKey) => `${k.saddr}|${k.daddr}|${k.sport}|${k.dport}|${k.protocol}|${k.dir}`;

/** Groups entries into pairs (pure): every forward entry with its reverse, and reverse entries whose forward is gone. */
export function pairsOf(entries: Iterable<[NatKey, NatEntry]>): NatPair[] {
  const all = new Map<string, [NatKey, NatEntry]>();
  for (const [k, v] of entries) all.set(keyText(k), [k, v]);
  // a service's reverse entries by the forward key they name (a hairpin one is found only so)
  const svcReverse = new Map<string, [NatKey, NatEntry]>();
  for (const [k, v] of all.values()) if (k.dir === NAT_DIR.reverse && isSvc(v)) svcReverse.set(keyText(forwardKeyOf(k, v)), [k, v]);
  const used = new Set<string>();
  const out: NatPair[] = [];
  for (const [k, v] of all.values()) {
    if (k.dir !== NAT_DIR.forward) continue;
    let rk = reverseKeyOf(k, v);
    let rev = all.get(keyText(rk));
    let named = rev && rev[1].addr === k.saddr && rev[1].port === k.sport;
    if (isSvc(v)) {
      rev = svcReverse.get(keyText(k));
      named = rev && rev[0].saddr === v.addr && rev[0].sport === v.port;
      if (rev && named) rk = rev[0];
    }
    if (named) used.add(keyText(rk));
    out.push({ key: k, forward: v, reverseKey: rk, ...(named ? { reverse: rev![1] } : {}) });
  }
  for (const [k, v] of all.values()) {
    if (k.dir !== NAT_DIR.reverse || used.has(keyText(k))) continue;
    out.push({ key: forwardKeyOf(k, v), reverseKey: k, reverse: v });
  }
  return out;
}

/** Whether pair `p` involves address `ip`: as the pod it translates, or as a service flow's backend. */
export function pairInvolves(p: NatPair, ip: string): boolean {
  if (p.key.saddr === ip) return true;
  const svc = (p.forward && isSvc(p.forward)) || (p.reverse && isSvc(p.reverse));
  // a service pair's reverse entry holds the frontend, not a pod
  if (svc) return p.forward?.addr === ip || p.reverseKey.saddr === ip;
  return p.reverse?.addr === ip;
}

/**
 * What a collection at `now` deletes (pure): the pairs whose present entries have all
 * expired, forward key first, then the reverse key.
 */
export function deadPairs(pairs: readonly NatPair[], now: bigint): NatPair[] {
  return pairs.filter((p) => (!p.forward || p.forward.expires <= now) && (!p.reverse || p.reverse.expires <= now));
}

/** Every pair. */
export function readNat(cfg: Pick<Config, 'pinRoot'>): NatPair[] {
  return NAT_MAP.with(cfg, (m) => pairsOf(m.entries()));
}

/**
 * Deletes the pairs that are dead at `now` (the clock of bpf_ktime_get_ns): the forward entry
 * first, then the reverse one unless a packet refreshed it meanwhile (the datapath may have
 * taken it over for the same flow). Counts the live ones.
 */
export function collectNat(cfg: Pick<Config, 'pinRoot'>, now: bigint = process.hrtime.bigint()): { live: number; deleted: number } {
  if (!NAT_MAP.pinned(cfg)) return { live: 0, deleted: 0 };
  return NAT_MAP.with(cfg, (m) => {
    const pairs = pairsOf(m.entries());
    const dead = deadPairs(pairs, now);
    let deleted = 0;
    for (const p of dead) {
      if (p.forward && m.delete(p.key)) deleted++;
      const rev = m.lookup(p.reverseKey);
      if (p.reverse && rev && rev.expires <= now && m.delete(p.reverseKey)) deleted++;
    }
    return { live: pairs.length - dead.length, deleted };
  });
}

/**
 * Removes the translations of pod address `ip` (both entries of each pair), so a pod that
 * gets the address later receives no reply of the old pod's flows, and a service flow to it
 * as a backend gets another backend at its next packet (UDP follows a replaced backend; TCP
 * is reset by the new one). Called with the
 * endpoint's conntrack flows, after its sl_endpoints entry is gone and before its address is
 * released. Returns how many entries.
 */
export function removeAddressNat(cfg: Pick<Config, 'pinRoot'>, ip: string): number {
  if (!NAT_MAP.pinned(cfg)) return 0;
  return NAT_MAP.with(cfg, (m) => {
    const mine = pairsOf(m.entries()).filter((p) => pairInvolves(p, ip));
    let n = 0;
    for (const p of mine) {
      if (p.forward && m.delete(p.key)) n++;
      if (p.reverse && m.delete(p.reverseKey)) n++;
    }
    return n;
  });
}
