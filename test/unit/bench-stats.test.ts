/**
 * The same-node benchmark's pure parts: statistics, ratios, the report, the command
 * line, and the parsers of iperf3 and sockperf output (fed with output captured from
 * iperf3 3.12 and sockperf 3.7, and with broken variants). Runs nothing.
 */
import t from 'tap';
import { cpuModel, parseCpuList, toolVersion } from '../../src/bench/machine.js';
import { DEFAULT_DURATION_S, DEFAULT_REPEATS, parseBenchArgs, UsageError } from '../../src/bench/options.js';
import { chooseCpus } from '../../src/bench/same-node.js';
import {
  fmt, fmtRatio, GOAL, median, pairedRatios, ratio, relative, renderMarkdown, summarize, type IperfSample, type MachineInfo, type SockperfSample, type Target,
} from '../../src/bench/stats.js';
import { parseIperf3Json, parseSockperf, ToolOutputError } from '../../src/bench/tools.js';

t.test('median', async (t) => {
  t.equal(median([3]), 3);
  t.equal(median([5, 1, 3]), 3, 'odd count: the middle one, unsorted input');
  t.equal(median([4, 1, 3, 2]), 2.5, 'even count: mean of the two middle ones');
  t.equal(median([2, 2, 2, 9]), 2);
  const xs = [3, 1, 2];
  median(xs);
  t.same(xs, [3, 1, 2], 'does not sort its input in place');
  t.throws(() => median([]), RangeError);
  t.throws(() => median([1, Number.NaN]), RangeError);
});

t.test('ratio and relative', async (t) => {
  t.equal(ratio(9.5, 10), 0.95);
  t.equal(ratio(null, 10), null);
  t.equal(ratio(10, null), null);
  t.equal(ratio(10, 0), null, 'no division by a zero baseline');
  t.equal(ratio(10, -1), null);
  t.equal(ratio(Number.POSITIVE_INFINITY, 1), null);
  t.equal(relative(0.9, 'higher'), 0.9, 'throughput: the ratio itself');
  t.equal(relative(1.25, 'lower'), 0.8, 'latency: 25% slower keeps 0.8 of the performance');
  t.equal(relative(null, 'lower'), null);
  t.equal(relative(0, 'lower'), null);
});

function iperf(target: Target, repeat: number, gbps: number): IperfSample {
  return { repeat, target, gbps, sentGbps: gbps, receivedBytes: (gbps * 5e9) / 8, retransmits: 0, seconds: 5, cpuHostPct: null, cpuRemotePct: null, intervalsGbps: [] };
}
function sock(target: Target, repeat: number, p50Us: number, p99Us: number): SockperfSample {
  return { repeat, target, p50Us, p99Us, avgUs: null, minUs: null, maxUs: null, observations: 1000, validSeconds: 4.6, percentiles: { 50: p50Us, 99: p99Us } };
}

t.test('summarize: medians per target, ratio of the medians', async (t) => {
  const ip = [iperf('baseline', 1, 40), iperf('sluice', 1, 30), iperf('baseline', 2, 44), iperf('sluice', 2, 39), iperf('baseline', 3, 42), iperf('sluice', 3, 40)];
  const sp = [sock('baseline', 1, 20, 40), sock('sluice', 1, 22, 50), sock('baseline', 2, 21, 44), sock('sluice', 2, 25, 45), sock('baseline', 3, 19, 90), sock('sluice', 3, 23, 47)];
  const [tput, p50, p99] = summarize(ip, sp);
  t.match(tput, { key: 'throughput', unit: 'Gbit/s', better: 'higher', baseline: 42, sluice: 39 });
  t.equal(tput!.ratio, 39 / 42);
  t.equal(tput!.relative, 39 / 42);
  t.same(tput!.samples, { baseline: [40, 44, 42], sluice: [30, 39, 40] }, 'samples in run order');
  t.match(p50, { key: 'rttP50', better: 'lower', baseline: 20, sluice: 23 });
  t.equal(p50!.ratio, 23 / 20);
  t.ok(Math.abs(p50!.relative! - 20 / 23) < 1e-12, 'latency: relative is baseline / sluice');
  t.match(p99, { key: 'rttP99', baseline: 44, sluice: 47 });
  t.same(tput!.paired, [30 / 40, 39 / 44, 40 / 42], 'ratio within each repeat');
  t.equal(tput!.pairedMedian, 39 / 44);
});

t.test('pairedRatios: by repeat number, whatever the order; repeats with one side are skipped', async (t) => {
  const b = [{ repeat: 1, value: 10 }, { repeat: 2, value: 20 }, { repeat: 3, value: 0 }, { repeat: 4, value: 5 }];
  const s = [{ repeat: 2, value: 10 }, { repeat: 1, value: 12 }, { repeat: 3, value: 1 }];
  t.same(pairedRatios(b, s), [1.2, 0.5], 'repeat 3 has a zero baseline, repeat 4 no sluice sample');
  t.same(pairedRatios([{ repeat: 1, value: 10 }, { repeat: 1, value: 99 }], [{ repeat: 1, value: 5 }]), [0.5], 'first sample of a repeat');
  t.same(pairedRatios([], s), []);
  t.equal(summarize([], []).every((f) => f.pairedMedian === null && f.paired.length === 0), true);
});

t.test('summarize: no samples gives nulls, not NaN', async (t) => {
  const figs = summarize([iperf('baseline', 1, 10)], []);
  t.equal(figs.length, 3);
  t.match(figs[0], { baseline: 10, sluice: null, ratio: null, relative: null });
  t.match(figs[1], { baseline: null, sluice: null, ratio: null });
});

t.test('formatting', async (t) => {
  t.equal(fmt(null), '–');
  t.equal(fmt(Number.NaN), '–');
  t.equal(fmt(123.456), '123');
  t.equal(fmt(42.06), '42.1');
  t.equal(fmt(4.789), '4.79');
  t.equal(fmt(0.5), '0.50');
  t.equal(fmtRatio(0.95123), '0.951');
  t.equal(fmtRatio(null), '–');
});

const MACHINE: MachineInfo = { kernel: '6.18.0', cpuModel: 'AMD EPYC', nproc: 2, node: 'v20.0.0', iperf3: 'iperf 3.12', sockperf: 'sockperf 3.7' };

t.test('renderMarkdown: a table of figure, baseline, sluice, ratio', async (t) => {
  const figs = summarize(
    [iperf('baseline', 1, 40), iperf('sluice', 1, 39)],
    [sock('baseline', 1, 20, 40), sock('sluice', 1, 25, 41)],
  );
  const md = renderMarkdown({ machine: MACHINE, repeats: 1, durationS: 5, smoke: false, mtu: 1500 }, figs);
  const lines = md.split('\n');
  const header = lines.findIndex((l) => l.startsWith('| figure |'));
  t.ok(header > 0, 'has a table header');
  t.match(lines[header], /\| figure \| baseline \(veth pair\) \| sluice \| ratio \(sluice \/ baseline\) \|/);
  t.match(lines[header + 1], /^\| --- \| ---: \| ---: \| ---: \|$/);
  t.match(lines[header + 2], /^\| TCP throughput, 1 stream \(Gbit\/s; higher is better\) \| 40\.0 \| 39\.0 \| 0\.975 \|$/);
  t.match(lines[header + 3], /^\| TCP request\/response RTT p50 \(µs; lower is better\) \| 20\.0 \| 25\.0 \| 1\.250 \|$/);
  t.match(lines[header + 4], /^\| TCP request\/response RTT p99 /);
  t.match(md, /Linux 6\.18\.0, AMD EPYC, 2 CPUs/);
  t.match(md, /MTU 1500/);
  t.match(md, new RegExp(`throughput, 1 stream: sluice performs at 0\\.975× the veth pair \\(meets ≥ ${GOAL}\\)`));
  t.match(md, /RTT p50: sluice performs at 0\.800× the veth pair \(below 0\.95\)\. Samples: baseline 20\.0; sluice 25\.0; ratio per repeat 1\.250 \(median 1\.250\)\./);
  t.notMatch(md, /smoke/);
  const smoke = renderMarkdown({ machine: MACHINE, repeats: 1, durationS: 1, smoke: true, mtu: null }, summarize([], []));
  t.match(smoke, /smoke run/);
  t.match(smoke, /\| – \| – \| – \|/, 'missing numbers print as dashes');
  t.match(smoke, /no result/);
});

t.test('parseBenchArgs', async (t) => {
  t.same(parseBenchArgs([]), { repeats: DEFAULT_REPEATS, durationS: DEFAULT_DURATION_S, json: undefined, smoke: false, help: false });
  t.same(parseBenchArgs(['--repeats', '5', '--duration=2', '--json', 'out.json']), { repeats: 5, durationS: 2, json: 'out.json', smoke: false, help: false });
  t.match(parseBenchArgs(['--smoke']), { repeats: 1, durationS: 1, smoke: true });
  t.match(parseBenchArgs(['--smoke', '--repeats', '2']), { repeats: 2, durationS: 1, smoke: true }, 'explicit flags win over --smoke');
  t.match(parseBenchArgs(['-h']), { help: true });
  for (const bad of [['--repeats', '0'], ['--repeats', 'x'], ['--repeats', '1.5'], ['--duration', '-1'], ['--duration', '601'], ['--bogus'], ['extra'], ['--json', '']]) {
    t.throws(() => parseBenchArgs(bad), UsageError, bad.join(' '));
  }
});

// Captured from `iperf3 -c 10.250.0.2 -t 1 -J` (3.12), trimmed to the fields that matter.
const IPERF_OK = JSON.stringify({
  start: { version: 'iperf 3.12' },
  intervals: [{ sum: { bits_per_second: 4.6e9 } }, { sum: { bits_per_second: 4.9e9 } }],
  end: {
    sum_sent: { seconds: 1.0002, bytes: 600000000, bits_per_second: 4.8e9, retransmits: 2678 },
    sum_received: { seconds: 1.0004, bytes: 598000000, bits_per_second: 4.7863e9 },
    cpu_utilization_percent: { host_total: 61.2, remote_total: 80.5 },
  },
});

t.test('parseIperf3Json', async (t) => {
  const r = parseIperf3Json(IPERF_OK);
  t.equal(r.gbps, 4.7863, 'receiver-side rate in Gbit/s');
  t.equal(r.sentGbps, 4.8);
  t.equal(r.retransmits, 2678);
  t.equal(r.seconds, 1.0004);
  t.equal(r.cpuHostPct, 61.2);
  t.equal(r.cpuRemotePct, 80.5);
  t.same(r.intervalsGbps, [4.6, 4.9]);
  t.equal(r.receivedBytes, 598000000, 'bytes the receiver got (for CPU per GB)');
  t.equal(parseIperf3Json(JSON.stringify({ end: { sum_received: { bits_per_second: 1e9 } } })).receivedBytes, null, 'null when iperf3 does not say');
  t.equal(parseIperf3Json(`warning: something\n${IPERF_OK}`).gbps, 4.7863, 'text before the JSON is skipped');
  t.throws(() => parseIperf3Json(JSON.stringify({ start: {}, intervals: [], end: {}, error: 'unable to connect to server: Connection refused' })),
    { name: 'ToolOutputError', message: /iperf3: unable to connect to server: Connection refused/ });
  t.throws(() => parseIperf3Json(''), ToolOutputError);
  t.throws(() => parseIperf3Json('iperf3: error - unable to connect'), /no JSON/);
  t.throws(() => parseIperf3Json('{"end": '), /not valid JSON/);
  t.throws(() => parseIperf3Json(JSON.stringify({ end: { sum_received: { bits_per_second: 0 } } })), /no receiver rate/);
});

// Captured from `sockperf ping-pong --tcp -i 127.0.0.1 -t 1 --full-rtt` (3.7), escapes and all.
const SOCKPERF_OK = `sockperf: \x1b[2;35m== version #3.7-no.git == \x1b[0m
sockperf[CLIENT] send on:sockperf: using recvfrom() to block on socket(s)

[ 0] IP = 127.0.0.1       PORT = 11111 # TCP
sockperf: Warmup stage (sending a few dummy messages)...
sockperf: Starting test...
sockperf: Test end (interrupted by timer)
sockperf: Test ended
sockperf: [Total Run] RunTime=1.002 sec; Warm up time=400 msec; SentMessages=23072; ReceivedMessages=23071
sockperf: ========= Printing statistics for Server No: 0
sockperf: [Valid Duration] RunTime=0.550 sec; SentMessages=14884; ReceivedMessages=14884
sockperf: \x1b[2;35m====> avg-rtt=36.855 (std-dev=154.358)\x1b[0m
sockperf: # dropped messages = 0; # duplicated messages = 0; # out-of-order messages = 0
sockperf: Summary: Round trip is 36.855 usec
sockperf: \x1b[2;35mTotal 14884 observations\x1b[0m; each percentile contains 148.84 observations
sockperf: ---> <MAX> observation = 8106.157
sockperf: ---> percentile 99.999 = 8106.157
sockperf: ---> percentile 99.990 = 5158.114
sockperf: ---> percentile 99.900 = 2393.658
sockperf: ---> percentile 99.000 =  297.844
sockperf: ---> percentile 90.000 =   41.146
sockperf: ---> percentile 75.000 =   24.835
sockperf: ---> percentile 50.000 =   20.638
sockperf: ---> percentile 25.000 =   15.999
sockperf: ---> <MIN> observation =   15.488
`;

t.test('parseSockperf', async (t) => {
  const r = parseSockperf(SOCKPERF_OK);
  t.equal(r.p50Us, 20.638);
  t.equal(r.p99Us, 297.844);
  t.equal(r.avgUs, 36.855);
  t.equal(r.minUs, 15.488);
  t.equal(r.maxUs, 8106.157);
  t.equal(r.observations, 14884, 'found through the colour escape');
  t.equal(r.validSeconds, 0.55);
  t.same(Object.keys(r.percentiles).sort(), ['25', '50', '75', '90', '99', '99.9', '99.99', '99.999']);
  t.equal(r.percentiles['99.9'], 2393.658);

  const oneWay = SOCKPERF_OK.replace('avg-rtt', 'avg-lat').replace('Round trip is', 'Latency is');
  t.equal(parseSockperf(oneWay).avgUs, 36.855, 'one-way output (no --full-rtt) parses as printed');

  const nsec = SOCKPERF_OK.replace('36.855 usec', '36855 nsec').replace('percentile 50.000 =   20.638', 'percentile 50.000 = 20638');
  t.equal(parseSockperf(nsec).p50Us, 20.638, 'a summary in nsec scales every figure to µs');

  const narrow = 'sockperf: ---> percentile  50.00 =  12.5\nsockperf: ---> percentile 99.00 = 30\n';
  t.match(parseSockperf(narrow), { p50Us: 12.5, p99Us: 30, avgUs: null, observations: null }, 'other spacing and precision, minimal output');

  t.throws(() => parseSockperf('sockperf: ERROR: Failed to connect (errno=111 Connection refused)\n'),
    { name: 'ToolOutputError', message: /no 50th\/99th percentile.*Connection refused/s });
  t.throws(() => parseSockperf(''), /\(empty\)/);
  t.throws(() => parseSockperf(SOCKPERF_OK.replace('usec', 'fortnights')), /unknown time unit/);
});

t.test('machine helpers', async (t) => {
  t.equal(cpuModel('processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\n'), 'AMD EPYC 7B13');
  t.equal(cpuModel(''), 'unknown CPU');
  t.same(parseCpuList('0-2,5'), [0, 1, 2, 5]);
  t.same(parseCpuList('3'), [3]);
  t.same(parseCpuList(''), []);
  t.equal(toolVersion('sockperf', 'sockperf, version 3.7-no.git'), 'sockperf 3.7');
  t.equal(toolVersion('x', 'no version here'), 'no version here');
});

t.test('chooseCpus: iperf3 ends apart, sockperf ends together', async (t) => {
  t.same(chooseCpus([0, 1]), { cpus: { iperfClient: 0, iperfServer: 1, sockperf: 0 } });
  t.same(chooseCpus([0, 1, 2, 3]).cpus, { iperfClient: 0, iperfServer: 1, sockperf: 0 });
  t.same(chooseCpus([2, 5]).cpus, { iperfClient: 2, iperfServer: 5, sockperf: 2 });
  const one = chooseCpus([3]);
  t.same(one.cpus, { iperfClient: 3, iperfServer: 3, sockperf: 3 });
  t.match(one.warning, /only CPU 3/);
});
