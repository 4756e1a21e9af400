/** `scripts/bench dataplanes` command line (pure). */
import { parseArgs } from 'node:util';
import { UsageError } from '../options.js';
import { MAX_RULE_COUNTS, selectTargets, type TargetInfo } from './targets.js';

export interface DataplanesOptions {
  repeats: number;
  durationS: number;
  /** Seconds of one iperf3 run per target before round 1, not counted (0: none). */
  warmupS: number;
  rules: number[];
  targets: TargetInfo[];
  /** iperf3 stream counts measured (1, and 4 unless --streams 1 or --smoke). */
  streams: number[];
  json: string | undefined;
  svg: string | undefined;
  smoke: boolean;
  help: boolean;
}

export const DEFAULT_RULES = [1000, 10000];
export const DEFAULT_WARMUP_S = 2;
export const SMOKE_RULES = [100];
/** sluice-policy-N's /32 ipBlocks each take an sl_ipcache entry (65,536 in all). */
export const MAX_RULES = 60_000;

export const DATAPLANES_USAGE = `usage: scripts/bench dataplanes [--repeats N] [--duration S] [--warmup S] [--rules N,…]
                               [--targets T,…] [--streams 1,4] [--json FILE] [--svg FILE] [--smoke]

sluice against the other ways of joining two pods, built side by side in network
namespaces and measured in one run on the same traffic: TCP throughput (iperf3, 1
and 4 streams), TCP request/response round trip p50/p99 (sockperf ping-pong), new
TCP connections per second (slbench-crr, compiled with clang at start) and CPU time
per GB (machine-wide, /proc/stat over each iperf3 run: run it on a quiet machine).
Every figure is a ratio to the limit measured in the same run: same-node targets to
'veth', two-node and outside targets to 'routed'. Rounds interleave every target; medians.

Targets (same node)  veth, bridge, bridge-iptables-N and sluice-policy-N (for each N of --rules,
                     sluice-policy-0 excepted), sluice-same-node
         (two nodes) routed, flannel-vxlan, host-gw, sluice-vxlan, sluice-direct,
                     sluice-hybrid (only when named in --targets)
    (to the outside) bridge-masq (Docker's bridge and iptables MASQUERADE), sluice-masq
                     (masquerade in BPF): a pod to a host outside the cluster

  --repeats N    rounds (default 3)
  --duration S   seconds per iperf3, sockperf and connection-rate run (default 5)
  --warmup S     before round 1, one iperf3 run of S seconds per target that is not
                 counted: neighbours, conntrack, TCP metrics and a lab's agents settle
                 (default ${DEFAULT_WARMUP_S}; --smoke: 0; 0 = none)
  --rules N,…    iptables FORWARD rules / NetworkPolicy ingress rules for bridge-iptables-N and
                 sluice-policy-N, the matching rule last (default ${DEFAULT_RULES.join(',')};
                 0 allowed; at most ${MAX_RULE_COUNTS} counts of at most ${MAX_RULES})
  --targets T,…  measure only these (their limit, veth or routed, is always added)
  --streams L    iperf3 stream counts, from 1 and 4 (default 1,4; --smoke: 1)
  --json FILE    every raw sample, the medians, the ratios and the machine
  --svg FILE     a chart of throughput and p50 latency per target and against the rule count
  --smoke        check the harness: 1 round of 1 s, no warm-up, rules ${SMOKE_RULES.join(',')}, 1 stream
  -h, --help     this text

Needs root, iproute2, iptables, iperf3, sockperf, clang and a built dist/. Namespaces
slbench-dp-*, labs slbenchdp*; all removed at the end, also on failure or Ctrl-C,
and by the next run if this one was killed.
`;

function whole(flag: string, v: string, min: number, max: number): number {
  if (!/^\d+$/.test(v.trim())) throw new UsageError(`${flag} ${v}: expected a whole number`);
  const n = Number(v);
  if (n < min || n > max) throw new UsageError(`${flag} ${v}: expected ${min} to ${max}`);
  return n;
}

function list(flag: string, v: string): string[] {
  const xs = v.split(',').map((s) => s.trim());
  if (xs.some((x) => !x)) throw new UsageError(`${flag} ${v}: expected a comma-separated list without empty items`);
  return xs;
}

export function parseDataplanesArgs(argv: readonly string[]): DataplanesOptions {
  let values: { repeats?: string; duration?: string; warmup?: string; rules?: string; targets?: string; streams?: string; json?: string; svg?: string; smoke?: boolean; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        repeats: { type: 'string' }, duration: { type: 'string' }, warmup: { type: 'string' }, rules: { type: 'string' }, targets: { type: 'string' },
        streams: { type: 'string' }, json: { type: 'string' }, svg: { type: 'string' }, smoke: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const smoke = values.smoke ?? false;
  const repeats = values.repeats === undefined ? (smoke ? 1 : 3) : whole('--repeats', values.repeats, 1, 100);
  const durationS = values.duration === undefined ? (smoke ? 1 : 5) : whole('--duration', values.duration, 1, 600);
  const warmupS = values.warmup === undefined ? (smoke ? 0 : DEFAULT_WARMUP_S) : whole('--warmup', values.warmup, 0, 60);
  let rules = smoke ? SMOKE_RULES : DEFAULT_RULES;
  if (values.rules !== undefined) rules = list('--rules', values.rules).map((s) => whole('--rules', s, 0, MAX_RULES));
  rules = [...new Set(rules)].sort((a, b) => a - b);
  if (rules.length > MAX_RULE_COUNTS) throw new UsageError(`--rules: at most ${MAX_RULE_COUNTS} counts`);
  let streams = smoke ? [1] : [1, 4];
  if (values.streams !== undefined) {
    streams = [...new Set(list('--streams', values.streams).map((s) => whole('--streams', s, 1, 4)))].sort((a, b) => a - b);
    if (streams.some((s) => s !== 1 && s !== 4)) throw new UsageError('--streams: 1 and/or 4');
  }
  let targets: TargetInfo[];
  try {
    targets = selectTargets(rules, values.targets === undefined ? undefined : list('--targets', values.targets));
  } catch (e) {
    throw new UsageError(`--targets: ${(e as Error).message}`);
  }
  for (const f of ['json', 'svg'] as const) {
    if (values[f] !== undefined && values[f]!.trim() === '') throw new UsageError(`--${f}: expected a file name`);
  }
  return { repeats, durationS, warmupS, rules, targets, streams, json: values.json, svg: values.svg, smoke, help: values.help ?? false };
}
