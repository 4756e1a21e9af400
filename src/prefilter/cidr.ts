/**
 * The prefilter's pure logic: parsing and validating denied CIDRs, their store records
 * (the keys are in store/keys.ts), and the difference between what the store wants in sl_prefilter and
 * what the map holds. No I/O.
 */
import { prefilterCidrText } from '../store/keys.js';
import type { PrefilterRule } from '../maps/prefilter.js';
import { formatCidr, formatIPv4, ipv4Network, parseIPv4, type Ipv4 } from '../util/ipv4.js';

/** A denied CIDR as the store keeps it (the JSON value of its key). */
export interface PrefilterEntry {
  /** Normalised "a.b.c.d/len", host bits zero. */
  cidr: string;
  /** Rule id, unique in the cluster and never reused: the key of the rule's counters. */
  id: number;
  /** When it was added (ISO 8601). */
  added: string;
}

export class PrefilterInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PrefilterInputError';
  }
}

const CIDR_SYNTAX = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/;

/**
 * One CIDR argument, normalised to "a.b.c.d/len". Throws PrefilterInputError naming the
 * argument for bad syntax, a prefix above 32, and host bits set (the message gives the
 * network to use instead). A bare address is not accepted: write /32.
 */
export function parseDenyCidr(arg: unknown): string {
  if (typeof arg !== 'string') throw new PrefilterInputError(`${JSON.stringify(arg)} is not a CIDR: expected a string like 198.18.0.0/15`);
  const s = arg.trim();
  if (s.includes(':')) throw new PrefilterInputError(`'${arg}': only IPv4 CIDRs can be denied`);
  const m = CIDR_SYNTAX.exec(s);
  if (!m) {
    const hint = /^\d{1,3}(\.\d{1,3}){3}$/.test(s) ? ` (for one address write ${s}/32)` : '';
    throw new PrefilterInputError(`'${arg}' is not a CIDR like 198.18.0.0/15${hint}`);
  }
  const prefix = Number(m[5]);
  if (prefix > 32) throw new PrefilterInputError(`'${arg}': prefix length ${prefix} is above 32`);
  let ip: Ipv4;
  try {
    ip = parseIPv4(s.slice(0, s.indexOf('/')));
  } catch {
    throw new PrefilterInputError(`'${arg}' is not a CIDR: ${s.slice(0, s.indexOf('/'))} is not an IPv4 address`);
  }
  const base = ipv4Network(ip, prefix);
  if (base !== ip) {
    throw new PrefilterInputError(`'${arg}' has host bits set: did you mean ${formatIPv4(base)}/${prefix}?`);
  }
  return formatCidr({ family: 4, base, prefix });
}

/**
 * Every argument validated before anything is done: the normalised CIDRs in the order
 * given, duplicates removed. One error lists every bad argument.
 */
export function parseDenyCidrs(args: unknown): string[] {
  if (!Array.isArray(args) || args.length === 0) throw new PrefilterInputError('give at least one CIDR, e.g. 198.18.0.0/15');
  const out: string[] = [];
  const errors: string[] = [];
  for (const a of args) {
    try {
      const c = parseDenyCidr(a);
      if (!out.includes(c)) out.push(c);
    } catch (e) {
      errors.push((e as Error).message);
    }
  }
  if (errors.length === 1) throw new PrefilterInputError(`${errors[0]}; nothing was changed`);
  if (errors.length) throw new PrefilterInputError(`${errors.length} bad CIDRs, nothing was changed: ${errors.join('; ')}`);
  return out;
}

/** A rule's store key (store/keys.ts prefilterKey) -> its CIDR, or undefined for a key that is not a rule's. */
export function cidrOfKey(key: string): string | undefined {
  const cidr = prefilterCidrText(key);
  if (cidr === undefined) return undefined;
  try {
    return parseDenyCidr(cidr) === cidr ? cidr : undefined;
  } catch {
    return undefined;
  }
}

/** A store record, checked: undefined when the key or value is not a valid rule (it is then ignored). */
export function parseEntry(key: string, value: string): PrefilterEntry | undefined {
  const cidr = cidrOfKey(key);
  if (!cidr) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(value);
  } catch {
    return undefined;
  }
  if (typeof v !== 'object' || v === null) return undefined;
  const o = v as Record<string, unknown>;
  if (o.cidr !== cidr || !isRuleId(o.id)) return undefined;
  return { cidr, id: o.id, added: typeof o.added === 'string' ? o.added : '' };
}

export function isRuleId(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v > 0 && v <= 0xffffffff;
}

/** Sorts CIDRs by address, then prefix length. */
export function compareCidrs(a: string, b: string): number {
  const [pa, la] = a.split('/');
  const [pb, lb] = b.split('/');
  return parseIPv4(pa!) - parseIPv4(pb!) || Number(la) - Number(lb);
}

export interface RuleDiff {
  /** CIDRs to insert (absent from the map). */
  add: [cidr: string, rule: PrefilterRule][];
  /** CIDRs whose map value differs from the store's (rewritten in place). */
  update: [cidr: string, rule: PrefilterRule][];
  /** CIDRs in the map the store no longer has. */
  del: string[];
  /** Counter entries (rule ids) that belong to no wanted rule. */
  staleCounters: number[];
}

/**
 * What must change so that the map equals the store's entries: `have` is sl_prefilter
 * (CIDR -> rule), `counters` the ids present in sl_prefilter_ct.
 */
export function diffRules(want: readonly PrefilterEntry[], have: ReadonlyMap<string, PrefilterRule>, counters: Iterable<number> = []): RuleDiff {
  const d: RuleDiff = { add: [], update: [], del: [], staleCounters: [] };
  const wanted = new Map(want.map((e) => [e.cidr, { id: e.id, flags: 0 } satisfies PrefilterRule]));
  for (const [cidr, rule] of wanted) {
    const h = have.get(cidr);
    if (!h) d.add.push([cidr, rule]);
    else if (h.id !== rule.id || h.flags !== rule.flags) d.update.push([cidr, rule]);
  }
  for (const cidr of have.keys()) if (!wanted.has(cidr)) d.del.push(cidr);
  const ids = new Set([...wanted.values()].map((r) => r.id));
  for (const id of counters) if (!ids.has(id)) d.staleCounters.push(id);
  d.add.sort((a, b) => compareCidrs(a[0], b[0]));
  d.update.sort((a, b) => compareCidrs(a[0], b[0]));
  d.del.sort(compareCidrs);
  d.staleCounters.sort((a, b) => a - b);
  return d;
}

/** The one-line summaries of a diff, for logs and reconcile reports. */
export function describeDiff(d: RuleDiff): string[] {
  return [
    ...d.add.map(([c, r]) => `denied ${c} (rule ${r.id})`),
    ...d.update.map(([c, r]) => `rewrote ${c} (rule ${r.id})`),
    ...d.del.map((c) => `removed ${c}`),
    ...(d.staleCounters.length ? [`dropped counters of removed rule(s) ${d.staleCounters.join(', ')}`] : []),
  ];
}

/**
 * The longest-prefix rule that matches `ip` among `entries`, as the datapath decides it:
 * the reference model for tests.
 */
export function matchRule(entries: readonly PrefilterEntry[], ip: string): PrefilterEntry | undefined {
  const addr = parseIPv4(ip);
  let best: PrefilterEntry | undefined;
  let bestLen = -1;
  for (const e of entries) {
    const [net, len] = e.cidr.split('/');
    const prefix = Number(len);
    if (ipv4Network(addr, prefix) === parseIPv4(net!) && prefix > bestLen) {
      best = e;
      bestLen = prefix;
    }
  }
  return best;
}
