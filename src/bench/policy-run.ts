/**
 * `scripts/bench policy`: runs the policy benchmark (src/bench/policy.ts) and reports it:
 * a markdown table on stdout, progress on stderr, `--json FILE` with every sample.
 * Exit 0 on success, 1 when the run failed, 2 on a usage error.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { machineInfo } from './machine.js';
import { parsePolicyBenchArgs, POLICY_USAGE, UsageError, type PolicyBenchArgs } from './options.js';
import { measurePolicy, PolicyRig, renderPolicyMarkdown, summarizePolicy, type PolicySample } from './policy.js';

const log = (line: string) => process.stderr.write(`${line}\n`);

function run(o: PolicyBenchArgs): number {
  if (process.getuid?.() !== 0) {
    log('bench policy: needs root (BPF_PROG_TEST_RUN, bpffs)');
    return 1;
  }
  if (!existsSync('/sys/fs/bpf')) {
    log('bench policy: /sys/fs/bpf is not there: mount bpffs first (mount -t bpf bpf /sys/fs/bpf)');
    return 1;
  }
  const machine = machineInfo();
  const startedAt = new Date().toISOString();
  const pinRoot = `/sys/fs/bpf/slbench-policy-${process.pid}`;
  mkdirSync(pinRoot);
  let rig: PolicyRig | undefined;
  const cleanup = () => {
    if (rig) rig.close();
    rig = undefined;
  };
  const onSignal = (sig: NodeJS.Signals) => {
    log(`\nbench policy: ${sig}: cleaning up`);
    cleanup();
    process.exit(sig === 'SIGINT' ? 130 : 143);
  };
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, onSignal);

  let samples: PolicySample[] = [];
  let error: Error | undefined;
  try {
    log(`bench policy: ${o.smoke ? 'smoke run: ' : ''}rules ${o.rules.join(', ')}; ${o.rounds} round(s); ${machine.kernel}, ${machine.cpuModel}`);
    rig = PolicyRig.create(pinRoot);
    samples = measurePolicy(rig, o, log);
  } catch (e) {
    error = e as Error;
  } finally {
    cleanup();
  }
  const figures = samples.length ? summarizePolicy(samples) : [];
  if (o.json) {
    writeFileSync(o.json, `${JSON.stringify({
      benchmark: 'sluice policy', schema: 1, startedAt, finishedAt: new Date().toISOString(),
      ok: !error, ...(error ? { error: error.message } : {}),
      options: { rules: o.rules, rounds: o.rounds, runs: o.runs, smoke: o.smoke },
      machine, samples, figures,
    }, null, 2)}\n`);
    log(`bench policy: wrote ${o.json}`);
  }
  if (error) {
    log(`bench policy: failed: ${error.message}`);
    return 1;
  }
  process.stdout.write(renderPolicyMarkdown(figures, { kernel: machine.kernel, cpu: machine.cpuModel, rounds: o.rounds, runs: o.runs }));
  return 0;
}

export function policyMain(argv: readonly string[]): number {
  let o: PolicyBenchArgs;
  try {
    o = parsePolicyBenchArgs(argv);
  } catch (e) {
    if (e instanceof UsageError) {
      log(`bench policy: ${e.message}\n\n${POLICY_USAGE}`);
      return 2;
    }
    throw e;
  }
  if (o.help) {
    process.stdout.write(POLICY_USAGE);
    return 0;
  }
  return run(o);
}
