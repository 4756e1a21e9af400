/**
 * sl_events: the datapath's events (a ring buffer of struct sl_event records), decoded with
 * the layout and the enum names from BTF (struct sl_event and its enum fields, read from the
 * kernel BTF of the sl_monitor map, which the same objects created). Their settings are
 * sl_monitor (monitor.ts), their counters sl_monitor_st (monitor-state.ts).
 */
import type { Config } from '../config/config.js';
import type { Btf } from '../bpf/btf.js';
import { codecFor, type Codec } from '../bpf/codec.js';
import { kernelBtf } from '../bpf/map.js';
import { RingBufferReader } from '../bpf/ringbuf.js';
import { typeProblems, type CType, type CTypeNames } from './btf-check.js';
import { MapDef } from './map.js';
import { enumWord } from './metrics.js';
import { MONITOR_MAP } from './monitor.js';

/** A ring buffer: no key, no value; its records are struct sl_event (EVENT_RECORD). */
export const EVENTS_MAP = new MapDef<never, never>({ name: 'sl_events' });

export type EventType = 'drop' | 'policy-verdict' | 'trace';
export const EVENT_TYPES: readonly EventType[] = ['drop', 'policy-verdict', 'trace'];

/** One decoded event, before names are put on identities, pods and policies. */
export interface RawEvent {
  /** Wall-clock time (ms since the epoch), from the event's monotonic timestamp. */
  time: number;
  type: EventType;
  direction: string;
  /** Reason word as in `sluice bpf metrics` (drop_policy_ingress, forward_local, …); "" for verdicts. */
  reason: string;
  protocol: string;
  ifindex: number;
  saddr: string;
  daddr: string;
  sport: number;
  dport: number;
  srcIdentity: number;
  dstIdentity: number;
  policyId: number;
  len: number;
}

interface WireEvent {
  timestamp: bigint;
  /** Enum fields decode to their names (SL_EVENT_DROP), or numbers BTF has no name for. */
  type: string | number;
  reason: string | number;
  dir: string | number;
  protocol: number;
  ifindex: number;
  saddr: string;
  daddr: string;
  sport: number;
  dport: number;
  src_identity: number;
  dst_identity: number;
  policy: number;
  len: number;
}

/** The record, as the members TypeScript reads of struct sl_event. */
const EVENT_RECORD: CType<WireEvent> = {
  name: 'sl_event',
  fields: {
    timestamp: true, type: true, reason: true, dir: true, protocol: true, ifindex: true, saddr: true, daddr: true,
    sport: true, dport: true, src_identity: true, dst_identity: true, policy: true, len: true,
  },
};

const PROTOCOLS: Record<number, string> = { 0: '', 1: 'ICMP', 6: 'TCP', 17: 'UDP', 132: 'SCTP' };

/** Monotonic (CLOCK_MONOTONIC, what bpf_ktime_get_ns reads) to wall-clock, measured once. */
function monotonicToWall(): (ns: bigint) => number {
  const wallMs = Date.now();
  const monoNs = process.hrtime.bigint();
  return (ns) => wallMs + Number(ns - monoNs) / 1e6;
}

export class EventDecoder {
  private readonly codec: Codec;
  private readonly toWall = monotonicToWall();

  constructor(btf: Btf) {
    const t = btf.findByName(EVENT_RECORD.name, 'STRUCT');
    if (!t) throw new Error('the datapath has no struct sl_event in its BTF: it was built before events existed; reload it (sluice node init --reload)');
    const problems = typeProblems(btf, t.id, EVENT_RECORD as CTypeNames, 'its record');
    if (problems.length) throw new Error(`${EVENTS_MAP.name} is not what sluice reads: ${problems.join('; ')}`);
    this.codec = codecFor(btf, t.id);
  }

  /** The decoder for the node's datapath (BTF of its pinned sl_monitor map). */
  static forNode(cfg: Pick<Config, 'pinRoot'>): EventDecoder {
    return MONITOR_MAP.with(cfg, (m) => {
      if (!m.info.btfId) throw new Error(`${MONITOR_MAP.name} has no BTF`);
      return new EventDecoder(kernelBtf(m.info.btfId));
    });
  }

  get size(): number {
    return this.codec.size;
  }

  decode(record: Buffer): RawEvent {
    if (record.length < this.codec.size) throw new Error(`event record of ${record.length} bytes, struct sl_event has ${this.codec.size}`);
    const w = this.codec.decode(record.subarray(0, this.codec.size)) as WireEvent;
    const type = enumWord(w.type, 'SL_EVENT_').replace('_', '-') as EventType;
    return {
      time: this.toWall(w.timestamp),
      type,
      direction: enumWord(w.dir, 'SL_DIR_'),
      reason: type === 'policy-verdict' ? '' : enumWord(w.reason, 'SL_REASON_'),
      protocol: PROTOCOLS[w.protocol] ?? String(w.protocol),
      ifindex: w.ifindex,
      saddr: w.saddr,
      daddr: w.daddr,
      sport: w.sport,
      dport: w.dport,
      srcIdentity: w.src_identity,
      dstIdentity: w.dst_identity,
      policyId: w.policy,
      len: w.len,
    };
  }
}

/** Reads the node's event ring buffer; records go to `onEvent` decoded. */
export function openEvents(cfg: Pick<Config, 'pinRoot'>, onEvent: (e: RawEvent) => void): RingBufferReader {
  const decoder = EventDecoder.forNode(cfg);
  return RingBufferReader.openPinned(EVENTS_MAP.path(cfg), (r) => onEvent(decoder.decode(r)));
}
