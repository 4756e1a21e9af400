/**
 * Records read back from the store, checked like user input: the store is a trust boundary
 * (another node, an operator with etcdctl, or someone with the store's credentials writes
 * it). Every field is checked for its type and, for an address, its family; the record's name
 * against its key. A record that fails is left out by the reader and reported with its key
 * and the first problem, never half-used. Pure: no I/O.
 */
import type { KeyValue } from './types.js';
import { labelKeyProblem, labelValueProblem, type Labels } from '../util/labels.js';
import { isIPv4, isMac, parseCidr } from '../util/ipv4.js';
import { parseCidrAny, parseIp } from '../util/ip.js';

export class RecordError extends Error {
  constructor(readonly key: string, message: string) {
    super(`store record ${key}: ${message}`);
    this.name = 'RecordError';
  }
}

/** The fields of one stored JSON object, each read through a check. */
export class RecordFields {
  private constructor(readonly key: string, private readonly o: Readonly<Record<string, unknown>>) {}

  static parse(key: string, value: string): RecordFields {
    let v: unknown;
    try {
      v = JSON.parse(value);
    } catch (e) {
      throw new RecordError(key, `is not JSON (${(e as Error).message})`);
    }
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new RecordError(key, 'is not a JSON object');
    return new RecordFields(key, v as Record<string, unknown>);
  }

  fail(field: string, problem: string): never {
    throw new RecordError(this.key, `"${field}" ${problem}`);
  }

  has(field: string): boolean {
    return this.o[field] !== undefined;
  }

  raw(field: string): unknown {
    return this.o[field];
  }

  /** A string; empty only with `empty`. */
  str(field: string, o: { empty?: boolean } = {}): string {
    const v = this.o[field];
    if (typeof v !== 'string') this.fail(field, `must be a string, got ${JSON.stringify(v) ?? 'nothing'}`);
    if (v === '' && !o.empty) this.fail(field, 'must not be empty');
    return v;
  }

  int(field: string, min: number, max: number): number {
    const v = this.o[field];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) this.fail(field, `must be a whole number from ${min} to ${max}, got ${JSON.stringify(v) ?? 'nothing'}`);
    return v;
  }

  /** An IPv4 address ('' allowed with `empty`). */
  ipv4(field: string, o: { empty?: boolean } = {}): string {
    const v = this.str(field, o);
    if (v !== '' && !isIPv4(v)) this.fail(field, `must be an IPv4 address, got '${v}'`);
    return v;
  }

  /** A unicast Ethernet address other than all zeros, as aa:bb:cc:dd:ee:ff (returned in lower case). */
  unicastMac(field: string): string {
    const v = this.str(field);
    if (!isMac(v)) this.fail(field, `must be an Ethernet address like 02:00:00:00:00:01, got '${v}'`);
    if (parseInt(v.slice(0, 2), 16) & 1) this.fail(field, `must be a unicast Ethernet address, got the multicast '${v}'`);
    if (/^(00:){5}00$/.test(v)) this.fail(field, 'must not be all zeros');
    return v.toLowerCase();
  }

  /** An IPv4 CIDR with its host bits zero ('' allowed with `empty`). */
  cidr4(field: string, o: { empty?: boolean } = {}): string {
    const v = this.str(field, o);
    if (v === '') return v;
    try {
      parseCidr(v);
    } catch (e) {
      this.fail(field, `must be an IPv4 CIDR: ${(e as Error).message}`);
    }
    return v;
  }

  /** The IPv6 twin of an address field: absent, or an IPv6 address (no zone id). */
  optIpv6(field: string): string | undefined {
    if (!this.has(field)) return undefined;
    const v = this.str(field);
    let family: number;
    try {
      family = parseIp(v).family;
    } catch (e) {
      this.fail(field, `must be an IPv6 address: ${(e as Error).message}`);
    }
    if (family !== 6) this.fail(field, `must be an IPv6 address, got '${v}'`);
    return v;
  }

  /** The IPv6 twin of a CIDR field: absent, or an IPv6 network (ADDRESS/0-128, host bits zero). */
  optCidr6(field: string): string | undefined {
    if (!this.has(field)) return undefined;
    const v = this.str(field);
    if (!v.includes(':')) this.fail(field, `must be an IPv6 CIDR like fd00:10:244::/64, got '${v}'`);
    try {
      parseCidrAny(v);
    } catch (e) {
      this.fail(field, `must be an IPv6 CIDR like fd00:10:244::/64: ${(e as Error).message}`);
    }
    return v;
  }

  labels(field: string): Labels {
    const v = this.o[field];
    if (typeof v !== 'object' || v === null || Array.isArray(v)) this.fail(field, 'must be an object of labels');
    const out: Labels = {};
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
      const p = labelKeyProblem(k) ?? (typeof x === 'string' ? labelValueProblem(k, x) : `label '${k}': value must be a string`);
      if (p) this.fail(field, p);
      out[k] = x as string;
    }
    return out;
  }
}

/** The records of `kvs` that parse, in order, and one problem line for each that does not. */
export function parseRecords<T>(kvs: readonly Pick<KeyValue, 'key' | 'value'>[], parse: (key: string, value: string) => T): { records: T[]; problems: string[] } {
  const records: T[] = [];
  const problems: string[] = [];
  for (const kv of kvs) {
    try {
      records.push(parse(kv.key, kv.value));
    } catch (e) {
      if (!(e instanceof RecordError)) throw e;
      problems.push(`${e.message}; left out`);
    }
  }
  return { records, problems };
}
