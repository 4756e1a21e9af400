/** The endpoint-creation benchmark's pure parts (src/bench/endpoints.ts): options, percentiles, summary, report. */
import t from 'tap';
import { UsageError } from '../../src/bench/options.js';
import { parseEndpointBenchArgs, percentile, renderEndpointMarkdown, summarizeEndpoints, type EndpointSample } from '../../src/bench/endpoints.js';

t.test('options: defaults, --smoke, explicit flags win, bad values named', async (t) => {
  t.match(parseEndpointBenchArgs([]), { count: 32, parallel: 16, rounds: 3, smoke: false, json: undefined });
  t.match(parseEndpointBenchArgs(['--smoke']), { count: 4, parallel: 2, rounds: 1, smoke: true });
  t.match(parseEndpointBenchArgs(['--smoke', '--count', '8', '--json', 'x.json']), { count: 8, parallel: 2, json: 'x.json' });
  const bad: [string[], RegExp][] = [
    [['--count', '0'], /--count: expected an integer from 1 to 250, got '0'/],
    [['--count', '2.5'], /--count: expected an integer/],
    [['--rounds', 'x'], /--rounds: expected an integer from 1 to 50, got 'x'/],
    [['--count', '4', '--parallel', '8'], /--parallel 8 is more than --count 4/],
    [['--frob'], /Unknown option '--frob'/],
    [['extra'], /Unexpected argument 'extra'/],
  ];
  for (const [argv, msg] of bad) t.throws(() => parseEndpointBenchArgs(argv), { name: UsageError.name, message: msg }, argv.join(' '));
});

t.test('percentile: nearest rank', async (t) => {
  const xs = Array.from({ length: 100 }, (_, i) => 100 - i); // 100..1, unsorted
  t.equal(percentile(xs, 50), 50);
  t.equal(percentile(xs, 99), 99);
  t.equal(percentile(xs, 100), 100);
  t.equal(percentile([7], 99), 7);
  t.ok(Number.isNaN(percentile([], 50)));
});

t.test('summary: per mode, sluice as a ratio of bridge; the table', async (t) => {
  const s = (plugin: 'sluice' | 'bridge', mode: 'sequential' | 'parallel', ms: number[]): EndpointSample[] => ms.map((x) => ({ plugin, mode, round: 0, ms: x }));
  const samples = [...s('sluice', 'sequential', [10, 20, 30]), ...s('bridge', 'sequential', [5, 10, 15]),
    ...s('sluice', 'parallel', [40, 40]), ...s('bridge', 'parallel', [80, 80])];
  const f = summarizeEndpoints(samples);
  t.same(f.map((x) => [x.mode, x.n, x.sluice.p50, x.bridge.p50, x.ratioP50, x.ratioP99]),
    [['sequential', 3, 20, 10, 2, 2], ['parallel', 2, 40, 80, 0.5, 0.5]]);
  const md = renderEndpointMarkdown(f, { kernel: 'k', cpu: 'c', count: 3, parallel: 2, rounds: 1 });
  t.match(md, /\| one at a time \| 3 \| 20\.0 \/ 10\.0 \| 2\.000 \|/);
  t.match(md, /\| 2 in parallel \| 2 \| 40\.0 \/ 80\.0 \| 0\.500 \|/);
});
