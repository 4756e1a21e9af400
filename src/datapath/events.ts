/**
 * Datapath events (ring buffer sl_events): decoding records with the layout and the enum
 * names from BTF (struct sl_event and its enum fields, read from the kernel BTF of the
 * sl_monitor map, which the same objects created), the event settings
 * in sl_monitor, and the per-CPU counters of sent and lost events in sl_monitor_st.
 */
import type { Config } from '../config/config.js';
import type { Btf } from '../bpf/btf.js';
import { codecFor, type Codec } from '../bpf/codec.js';
import { kernelBtf } from '../bpf/map.js';
import { RingBufferReader } from '../bpf/ringbuf.js';
import { enumWord } from './metrics.js';
import { openMap } from './loader.js';
import { nodePins } from './pins.js';

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
    const t = btf.findByName('sl_event', 'STRUCT');
    if (!t) throw new Error('the datapath has no struct sl_event in its BTF: it was built before events existed; reload it (sluice node init --reload)');
    this.codec = codecFor(btf, t.id);
  }

  /** The decoder for the node's datapath (BTF of its pinned sl_monitor map). */
  static forNode(cfg: Pick<Config, 'pinRoot'>): EventDecoder {
    const m = openMap(cfg, 'sl_monitor');
    try {
      if (!m.info.btfId) throw new Error('sl_monitor has no BTF');
      return new EventDecoder(kernelBtf(m.info.btfId));
    } finally {
      m.close();
    }
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
  return RingBufferReader.openPinned(nodePins(cfg).map('sl_events'), (r) => onEvent(decoder.decode(r)));
}

export interface MonitorSettings {
  trace: boolean;
  /** Events per second per CPU (0: the datapath's default). */
  rate: number;
}

export function writeMonitorSettings(cfg: Pick<Config, 'pinRoot'>, s: MonitorSettings): void {
  const m = openMap<number, { trace: number; rate: number }>(cfg, 'sl_monitor');
  try {
    m.update(0, { trace: s.trace ? 1 : 0, rate: s.rate });
  } finally {
    m.close();
  }
}

export interface EventCounters {
  sent: number;
  rateLimited: number;
  ringFull: number;
}

/** Events sent and lost, summed over CPUs. */
export function readEventCounters(cfg: Pick<Config, 'pinRoot'>): EventCounters {
  const m = openMap<number, { sent: bigint; rate_limited: bigint; ring_full: bigint }[]>(cfg, 'sl_monitor_st');
  try {
    const perCpu = m.lookup(0) ?? [];
    const sum = (f: (v: { sent: bigint; rate_limited: bigint; ring_full: bigint }) => bigint) => Number(perCpu.reduce((a, v) => a + f(v), 0n));
    return { sent: sum((v) => v.sent), rateLimited: sum((v) => v.rate_limited), ringFull: sum((v) => v.ring_full) };
  } finally {
    m.close();
  }
}
