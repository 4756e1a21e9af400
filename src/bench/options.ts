/** The benchmark's command line (pure: parses argv, does nothing). */
import { parseArgs } from 'node:util';

export interface BenchOptions {
  repeats: number;
  durationS: number;
  json: string | undefined;
  smoke: boolean;
  help: boolean;
}

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export const DEFAULT_REPEATS = 3;
export const DEFAULT_DURATION_S = 5;

export const USAGE = `usage: scripts/bench [--repeats N] [--duration S] [--json FILE] [--smoke]
       scripts/bench policy [options]   (policy cost at N rules: scripts/bench policy --help)
       scripts/bench dataplanes [options]   (sluice against veth, bridge, iptables, flannel, host-gw: --help)

Same-node pod-to-pod benchmark: TCP throughput (iperf3, one stream) and TCP
request/response round trip p50/p99 (sockperf ping-pong) between two sluice pods,
each against two namespaces joined by a bare veth pair, measured in the same run.
Needs root, iperf3, sockperf, taskset and a built dist/ (npx tsc -p tsconfig.json).

  --repeats N    interleaved repeats (baseline, sluice, ...) per figure (default ${DEFAULT_REPEATS})
  --duration S   seconds per iperf3 and per sockperf run (default ${DEFAULT_DURATION_S})
  --json FILE    also write every raw sample, the medians and the machine to FILE
  --smoke        check the harness: 1 repeat of 1 second (explicit flags still win)
  -h, --help     this text

The markdown table goes to stdout, progress to stderr. Everything runs in network
namespaces named slbench-*, with pins under /sys/fs/bpf/slbench; all of it is
removed at the end, also on failure or Ctrl-C.
`;

function positiveInt(flag: string, v: string | undefined, max: number): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v.trim())) throw new UsageError(`${flag} ${v}: expected a whole number`);
  const n = Number(v);
  if (n < 1 || n > max) throw new UsageError(`${flag} ${v}: expected 1 to ${max}`);
  return n;
}

export function parseBenchArgs(argv: readonly string[]): BenchOptions {
  let values: { repeats?: string; duration?: string; json?: string; smoke?: boolean; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        repeats: { type: 'string' },
        duration: { type: 'string' },
        json: { type: 'string' },
        smoke: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const smoke = values.smoke ?? false;
  const repeats = positiveInt('--repeats', values.repeats, 100) ?? (smoke ? 1 : DEFAULT_REPEATS);
  const durationS = positiveInt('--duration', values.duration, 600) ?? (smoke ? 1 : DEFAULT_DURATION_S);
  if (values.json !== undefined && values.json.trim() === '') throw new UsageError('--json: expected a file name');
  return { repeats, durationS, json: values.json, smoke, help: values.help ?? false };
}

export interface PolicyBenchArgs {
  rules: number[];
  rounds: number;
  runs: number;
  json: string | undefined;
  smoke: boolean;
  help: boolean;
}

export const POLICY_USAGE = `usage: scripts/bench policy [--rules N,N,…] [--rounds R] [--runs K] [--json FILE] [--smoke]

Policy cost at N NetworkPolicy rules on one pod (the matching rule last), each figure
paired with 0 rules in the same round: the from_container program's time for a new
flow, an established flow and a denied packet (BPF_PROG_TEST_RUN, nothing attached,
nothing sent), and the time to compile the rules and write the maps.
Needs root and clang; pins under /sys/fs/bpf/slbench-policy-*, removed at the end.

  --rules N,…    rule counts, at most 60000 (each rule's /32 takes an sl_ipcache entry);
                 default 10,1000,10000; 0 is always measured
  --rounds R     interleaved rounds (default 5)
  --runs K       single program runs per figure, the median is kept (default 2000)
  --json FILE    also write every sample, the medians and the machine to FILE
  --smoke        check the harness: 1 round, 10 and 100 rules, 50 runs
  -h, --help     this text
`;

export function parsePolicyBenchArgs(argv: readonly string[]): PolicyBenchArgs {
  let values: { rules?: string; rounds?: string; runs?: string; json?: string; smoke?: boolean; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        rules: { type: 'string' }, rounds: { type: 'string' }, runs: { type: 'string' },
        json: { type: 'string' }, smoke: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const smoke = values.smoke ?? false;
  let rules = smoke ? [10, 100] : [10, 1000, 10000];
  if (values.rules !== undefined) {
    rules = values.rules.split(',').map((s) => {
      const n = positiveInt('--rules', s, 60_000);
      if (n === undefined) throw new UsageError('--rules: expected counts like 10,1000,10000');
      return n;
    });
  }
  if (values.json !== undefined && values.json.trim() === '') throw new UsageError('--json: expected a file name');
  return {
    rules: [...new Set(rules)].sort((a, b) => a - b),
    rounds: positiveInt('--rounds', values.rounds, 100) ?? (smoke ? 1 : 5),
    runs: positiveInt('--runs', values.runs, 1_000_000) ?? (smoke ? 50 : 2000),
    json: values.json,
    smoke,
    help: values.help ?? false,
  };
}
