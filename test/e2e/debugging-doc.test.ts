/**
 * docs/debugging.md, run: every recipe of the document (a ```sh block marked
 * `<!-- recipe: ID -->`) is run as written, in order, on a lab node where a policy drops
 * a pod's packets, and what it prints is checked. The commands are the document's own
 * text; only the pin root and the addresses of the story's pods are the lab's. A recipe
 * without a check here, or a check without its recipe, fails the test.
 */
import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LabStatus } from '../../src/lab/status.js';
import { IS_ROOT, REPO, SLUICE_BIN, tempDir, uniquePrefix } from '../helpers/env.js';
import { inNs, labUp } from '../helpers/lab.js';
import { readRecipes, type Recipe } from '../helpers/recipes.js';

if (!IS_ROOT) {
  t.plan(0, 'needs root');
  process.exit(0);
}
t.setTimeout(300_000);

const DOC = join(REPO, 'docs', 'debugging.md');
/** The pin root and pod addresses as the document writes them. */
const DOC_PIN_ROOT = '/sys/fs/bpf/sluice';
const DOC_IPS: Record<string, string> = { web: '10.244.0.1', client: '10.244.0.2', other: '10.244.0.3' };
/** What the story sends: datagrams from shop/other to shop/web:80, which the policy drops. */
const DENIED_DATAGRAMS = 3;

type Pod = LabStatus['pods'][number];
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

interface Step {
  /** Traffic or changes before the recipe runs. */
  before?: () => void | Promise<void>;
  /** For a command that streams until something happens: run once it is listening. */
  during?: () => void;
  check: (tt: Test, out: string) => void;
}

t.test('docs/debugging.md: every recipe, run on a lab node', async (tt) => {
  const recipes = readRecipes(DOC);
  const lab = uniquePrefix('dbg');
  const dir = tempDir(tt, lab);
  const topo = join(dir, 'topo.yaml');
  writeFileSync(topo, `mode: vxlan
store: file
nodes: [{name: n1}]
namespaces: [{name: shop}]
pods:
  - {name: web, namespace: shop, node: n1, labels: {app: web}, ports: [{name: http, port: 80}]}
  - {name: client, namespace: shop, node: n1, labels: {app: client}}
  - {name: other, namespace: shop, node: n1, labels: {app: other}}
`);
  const { status: s } = labUp(tt, lab, ['-f', topo]);
  const n1 = s.nodes[0]!;
  const pod = (name: string): Pod => s.pods.find((p) => p.name === `shop/${name}`)!;
  const [web, client, other] = [pod('web'), pod('client'), pod('other')];
  tt.same({ web: web.ip, client: client.ip, other: other.ip }, DOC_IPS, 'the lab gives the story\'s pods the document\'s addresses');

  // `sluice` on PATH acts on the lab node, as it acts on the node it runs on in a node install.
  const bin = join(dir, 'bin');
  mkdirSync(bin);
  writeFileSync(join(bin, 'sluice'), `#!/bin/sh\nexec ${process.execPath} ${SLUICE_BIN} --config ${n1.config} "$@"\n`);
  chmodSync(join(bin, 'sluice'), 0o755);
  const env = { ...process.env, PATH: `${bin}:${process.env.PATH}` };
  const localize = (cmd: string) => cmd.replaceAll(DOC_PIN_ROOT, n1.pinRoot);

  const listeners = [spawn('nsenter', [`--net=${web.netns}`, 'nc', '-lk', '-p', '80'], { stdio: 'ignore' })];
  tt.teardown(() => { for (const l of listeners) l.kill('SIGKILL'); });
  const policy = join(dir, 'web.yaml');
  writeFileSync(policy, `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web-ingress, namespace: shop}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress:
  - from: [{podSelector: {matchLabels: {app: client}}}]
    ports: [{port: http}]
`);
  const cli = (args: readonly string[]) => {
    const r = inNs(n1.netns, process.execPath, [SLUICE_BIN, '--config', n1.config, ...args]);
    if (r.status !== 0) throw new Error(`sluice ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  cli(['policy', 'apply', '-f', policy]);
  cli(['prefilter', 'add', '203.0.113.0/24']);
  // The policy is in the datapath once web is isolated for ingress in sl_policy.
  const isolated = () => (JSON.parse(cli(['bpf', 'policy', '-o', 'json'])) as { endpoint: string; direction: string; verdict: string }[])
    .some((r) => r.endpoint === 'shop/web' && r.direction === 'ingress' && r.verdict === 'deny');
  for (let i = 0; i < 50 && !isolated(); i++) await sleep(300);
  tt.ok(isolated(), 'the policy is in sl_policy');
  const tcp = (from: Pod) => inNs(from.netns, 'sh', ['-c', `echo hi | nc -w 2 -q 0 ${web.ip} 80`]).status === 0;
  tt.ok(tcp(client) && tcp(client), 'client reaches web:80 (the policy allows it), twice');
  let sent = 0;
  const sendDenied = () => {
    inNs(other.netns, process.execPath, ['-e', `const s=require('dgram').createSocket('udp4');s.send('x',80,'${web.ip}',()=>s.close())`]);
    sent++;
  };

  const hostIfname = (p: Pod) => {
    const eps = JSON.parse(cli(['endpoint', 'list', '-o', 'json'])) as { name: string; hostIfname: string; id: number }[];
    return eps.find((e) => e.name === p.name)!;
  };
  const lines = (out: string) => out.split('\n');
  const progName = (id: string | undefined) => id === undefined ? undefined
    : (JSON.parse(inNs(n1.netns, 'bpftool', ['-j', 'prog', 'show', 'id', id]).stdout) as { name: string }).name;

  const steps: Record<string, Step> = {
    'status': {
      check: (st, out) => {
        st.match(out, /^agent: running \(pid \d+\), ready$/m, 'the agent runs');
        st.match(out, new RegExp(`^  from_container +id \\d+ +3 attached`, 'm'), 'from_container on the 3 pods');
        st.notMatch(out, /DETACHED/, 'nothing detached');
      },
    },
    'bpf-endpoints': {
      check: (st, out) => {
        for (const p of [web, other]) {
          st.match(out, new RegExp(`^${p.ip!.replaceAll('.', '\\.')} +${p.name} +\\d+ +${hostIfname(p).hostIfname} .* \\d+ app=${p.name.slice(5)},io\\.kubernetes\\.pod\\.namespace=shop +0$`, 'm'),
            `${p.name}: address, pod, host veth and identity by its labels`);
        }
      },
    },
    'monitor-drop': {
      during: () => sendDenied(),
      check: (st, out) => {
        st.match(out, new RegExp(`DROP drop_policy_ingress egress UDP ${other.ip}:\\d+ \\(shop/other\\) -> ${web.ip}:80 \\(shop/web\\) policy shop/web-ingress on ${hostIfname(other).hostIfname} len \\d+`),
          'the drop, with its reason, both pods and the policy');
        st.equal(lines(out.trim()).length, 1, '-n 1: one event, then the monitor exits');
      },
    },
    'explain': {
      check: (st, out) => {
        st.match(out, /denied/i, 'explain says denied');
        st.match(out, /shop\/web-ingress/, 'and names the policy that isolates web');
      },
    },
    'bpf-policy': {
      check: (st, out) => {
        st.match(out, /^shop\/web +ingress +any +any +any +deny +shop\/web-ingress$/m, 'web is isolated for ingress');
        st.match(out, /^shop\/web +ingress +app=client,io\.kubernetes\.pod\.namespace=shop +TCP +80 +allow +shop\/web-ingress$/m, 'the client identity is allowed on TCP/80');
      },
    },
    'bpf-metrics': {
      before: () => { while (sent < DENIED_DATAGRAMS) sendDenied(); },
      check: (st, out) => {
        st.match(out, new RegExp(`^drop_policy_ingress +egress +${DENIED_DATAGRAMS} +\\d+$`, 'm'), `the ${DENIED_DATAGRAMS} datagrams, dropped`);
      },
    },
    'bpf-prefilter': {
      check: (st, out) => {
        st.match(out, /^CIDR +RULE +PACKETS +BYTES$/m);
        st.match(out, /^203\.0\.113\.0\/24 +\d+ +0 +0$/m, 'the denied CIDR, nothing dropped yet');
      },
    },
    'prometheus': {
      check: (st, out) => {
        const samples = new Map(lines(out.trim()).map((l) => {
          const m = /^([a-z_]+(?:\{[^}]*\})?) (\S+)$/.exec(l);
          st.ok(m, `Prometheus text: ${l}`);
          return [m?.[1], Number(m?.[2])] as const;
        }));
        st.equal(samples.get('sluice_policy_verdicts_total{direction="ingress",policy="shop/web-ingress",verdict="denied"}'), DENIED_DATAGRAMS, 'denied verdicts: what the story sent');
        st.ok((samples.get('sluice_policy_verdicts_total{direction="ingress",policy="shop/web-ingress",verdict="allowed"}') ?? 0) >= 2, 'allowed verdicts: the client\'s connections');
        st.equal(samples.get('sluice_datapath_packets_total{direction="egress",reason="drop_policy_ingress"}'), DENIED_DATAGRAMS, 'the same drops in the datapath counters');
      },
    },
    'bpf-ct': {
      before: () => { tcp(client); },
      check: (st, out) => {
        st.match(out, new RegExp(`^TCP +${client.ip}:\\d+ +${web.ip}:80 +\\S+ +\\S+ +\\d+ +\\d+ +shop/web-ingress$`, 'm'), 'the client\'s connection, allowed by shop/web-ingress');
      },
    },
    'bpftool-net': {
      check: (st, out) => {
        const m = /^xdp:\n(\S+)\(\d+\) (?:driver|generic) id (\d+)$/m.exec(out);
        st.ok(m, 'an XDP program on a device');
        st.equal(m?.[1], 'uplink0', 'on the node\'s uplink');
        st.match(progName(m?.[2]), 'xdp_prefilter', 'the prefilter');
      },
    },
    'bpftool-links': {
      check: (st, out) => {
        for (const p of [web, client, other]) {
          const ifname = hostIfname(p).hostIfname;
          for (const [hook, prog] of [['ingress', 'from_container'], ['egress', 'to_container']]) {
            const m = new RegExp(`^${ifname}-${hook}: \\d+: type 11 +prog (\\d+)`, 'm').exec(out);
            st.equal(progName(m?.[1]), prog, `${p.name}: ${prog} on ${ifname}'s ${hook} (a tcx link)`);
          }
        }
      },
    },
    'bpftool-prog': {
      check: (st, out) => {
        st.match(out, /^\d+: sched_cls +name from_container +tag [0-9a-f]+ +gpl$/m, 'the pinned program, by name');
        st.match(out, /map_ids [\d,]+/, 'and the maps it uses');
      },
    },
    'bpftool-metrics': {
      check: (st, out) => {
        const dump = JSON.parse(out) as { key: { reason: string; dir: string }; values: { cpu: number; value: { packets: number } }[] }[];
        const e = dump.find((x) => x.key.reason === 'SL_REASON_DROP_POLICY_INGRESS' && x.key.dir === 'SL_DIR_EGRESS');
        st.ok(e, 'the drop_policy_ingress counter, its key by enum name');
        st.equal(e?.values.reduce((a, v) => a + v.value.packets, 0), DENIED_DATAGRAMS, 'summed over CPUs: the datagrams sent');
      },
    },
    'bpftool-endpoint': {
      check: (st, out) => {
        const e = JSON.parse(out) as { value: { id: number; ifindex: number; identity: number } };
        st.equal(e.value.id, hostIfname(web).id, 'web\'s endpoint id, looked up by its address');
      },
    },
    'bpftool-policy': {
      check: (st, out) => {
        const dump = JSON.parse(out) as { key: { endpoint: number; identity: number; dir: number; prefixlen: number }; value: { policy: number; flags: number } }[];
        const id = hostIfname(web).id;
        const mine = dump.filter((x) => x.key.endpoint === id && x.key.dir === 1);
        st.ok(mine.some((x) => x.key.identity === 0 && x.value.flags === 0), 'web: isolated for ingress (identity 0, flags 0 = deny)');
        st.ok(mine.some((x) => x.key.identity !== 0 && x.value.flags === 1), 'and one identity allowed (flags 1)');
      },
    },
    'bpftool-monitor': {
      check: (st, out) => {
        const v = (JSON.parse(out) as { value: { trace: number; rate: number } }[])[0]?.value;
        st.same(v, { trace: 0, rate: 0 }, 'no trace asked for, the default rate');
      },
    },
  };

  tt.same(recipes.map((r) => r.id).sort(), Object.keys(steps).sort(), 'every recipe of the document has a check here, and every check its recipe');
  for (const r of recipes) {
    const step = steps[r.id];
    if (!step) continue;
    await tt.test(`${r.id} (debugging.md:${r.line}): ${r.commands.join(' ; ')}`, async (st) => {
      await step.before?.();
      const out = await run(r, localize, env, n1.netns, step.during);
      step.check(st, out);
    });
  }
});

/** Runs a recipe's commands in `netns` with a shell, stdout of all of them; a failing command fails. */
async function run(r: Recipe, localize: (c: string) => string, env: NodeJS.ProcessEnv, netns: string, during?: () => void): Promise<string> {
  let out = '';
  for (const cmd of r.commands.map(localize)) {
    const p = spawn('nsenter', [`--net=${netns}`, 'sh', '-c', cmd], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let o = '';
    let e = '';
    p.stdout.on('data', (d: Buffer) => { o += d; });
    p.stderr.on('data', (d: Buffer) => { e += d; });
    const exited = new Promise<number | null>((res) => p.once('close', (code) => res(code))); // 'close': stdout fully read
    const killer = setTimeout(() => p.kill('SIGKILL'), 30_000);
    if (during) {
      const deadline = Date.now() + 20_000;
      while (!e.includes('monitoring node') && Date.now() < deadline) await sleep(100);
      during();
    }
    const code = await exited;
    clearTimeout(killer);
    if (code !== 0) throw new Error(`recipe ${r.id}: \`${cmd}\` exited ${code}: ${e}${o}`);
    out += o;
  }
  return out;
}
