/**
 * The policy and conntrack maps decoded for people: sl_policy entries as (endpoint,
 * direction, peer, protocol, ports, verdict, policy), sl_ct_v2 entries as flows with their
 * state, time left and deciding policy. Numbers are named through a Namer (MapNames).
 */
import type { Config } from '../config/config.js';
import type { PolicyKey, PolicyValue } from '../policy/compile.js';
import { CT_MAP, type CtEntry, type CtKey } from './conntrack.js';
import { openMap } from './loader.js';

/** What names numbers (MapNames, or a stand-in in tests). */
export interface Namer {
  identity(id: number): string;
  policy(id: number): string;
  endpoint(id: number): string;
}

const PROTOCOL: Record<number, string> = { 1: 'ICMP', 6: 'TCP', 17: 'UDP', 132: 'SCTP' };
const VERDICT: Record<number, string> = { 0: 'deny', 1: 'allow', 2: 'unisolated' };
const CT_STATE: Record<number, string> = { 0: 'new', 1: 'established', 2: 'closing' };

export interface PolicyRow {
  endpoint: string;
  endpointId: number;
  direction: 'egress' | 'ingress';
  peer: string;
  identity: number;
  protocol: string;
  /** "any", "80" or "8000-8191" */
  ports: string;
  verdict: string;
  policy: string;
}

/** Key bits: endpoint 32 + identity 32 + dir 8 (= 72), protocol 8 (= 80), dport 16 (= 96). */
export function policyRow(k: PolicyKey, v: PolicyValue, names: Namer): PolicyRow {
  const protoKnown = k.prefixlen >= 80;
  const portBits = Math.max(0, k.prefixlen - 80);
  const ports = !protoKnown || portBits === 0 ? 'any' : portBits === 16 ? String(k.dport) : `${k.dport}-${k.dport + 2 ** (16 - portBits) - 1}`;
  return {
    endpoint: names.endpoint(k.endpoint), endpointId: k.endpoint,
    direction: k.dir === 1 ? 'ingress' : 'egress',
    peer: names.identity(k.identity), identity: k.identity,
    protocol: protoKnown ? PROTOCOL[k.protocol] ?? String(k.protocol) : 'any',
    ports, verdict: VERDICT[v.flags] ?? String(v.flags), policy: names.policy(v.policy),
  };
}

export function readPolicyRows(cfg: Pick<Config, 'pinRoot'>, names: Namer): PolicyRow[] {
  const m = openMap<PolicyKey, PolicyValue>(cfg, 'sl_policy');
  try {
    return [...m.entries()].map(([k, v]) => policyRow(k, v, names)).sort((a, b) =>
      a.endpointId - b.endpointId || a.direction.localeCompare(b.direction) || a.identity - b.identity || a.protocol.localeCompare(b.protocol) || a.ports.localeCompare(b.ports, 'en', { numeric: true }));
  } finally {
    m.close();
  }
}


export interface CtRow {
  protocol: string;
  src: string;
  dst: string;
  state: string;
  /** Seconds until the entry expires; negative: dead, waiting for the agent's GC. */
  expiresIn: number;
  packets: number;
  bytes: number;
  policy: string;
}

export function readCtRows(cfg: Pick<Config, 'pinRoot'>, names: Namer, now = process.hrtime.bigint()): CtRow[] {
  const m = openMap<CtKey, CtEntry>(cfg, CT_MAP);
  try {
    const withPorts = (p: number) => p === 6 || p === 17 || p === 132;
    return [...m.entries()].map(([k, v]) => ({
      protocol: PROTOCOL[k.protocol] ?? String(k.protocol),
      src: withPorts(k.protocol) ? `${k.saddr}:${k.sport}` : k.saddr,
      dst: withPorts(k.protocol) ? `${k.daddr}:${k.dport}` : k.daddr,
      state: CT_STATE[v.state] ?? String(v.state),
      expiresIn: Math.round(Number(v.expires - now) / 1e8) / 10,
      packets: Number(v.packets), bytes: Number(v.bytes), policy: names.policy(v.policy),
    })).sort((a, b) => a.src.localeCompare(b.src, 'en', { numeric: true }) || a.dst.localeCompare(b.dst, 'en', { numeric: true }));
  } finally {
    m.close();
  }
}
