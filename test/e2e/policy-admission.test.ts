/**
 * A pod created under default deny is denied from its first packet, in both directions.
 * The agent admits a new endpoint before the datapath knows it: its identity and its
 * sl_policy entries are written before its sl_endpoints entry and its programs, and all of
 * it before the CNI ADD answers (before, the endpoint had identity 0 and no entries, so
 * "selected by no policy", until a reconciliation 200 ms later).
 *
 * Traffic runs before the ADD: an existing pod pings the address the new pod will get,
 * and a loop inside the new pod's namespace pings that pod as soon as eth0 exists. Captures
 * on both ends must see none of it arrive; the drop counters show it was sent.
 */
import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AgentClient } from '../../src/api/client.js';
import { IS_ROOT, SLUICE_BIN, sh, tempDir, uniquePrefix } from '../helpers/env.js';
import { labUp, sluice } from '../helpers/lab.js';
import { background, waitOutput } from '../helpers/spawn.js';

if (!IS_ROOT) {
  t.plan(0, 'needs root');
  process.exit(0);
}
t.setTimeout(300_000);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

const DENY_ALL = `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-all, namespace: fresh}
spec:
  podSelector: {}
  policyTypes: [Ingress, Egress]
`;

function counter(netns: string, config: string, reason: string): number {
  const r = sh('nsenter', [`--net=${netns}`, process.execPath, SLUICE_BIN, '--config', config, 'bpf', 'metrics', '-o', 'json']);
  const rows = JSON.parse(r.stdout || '[]') as { reason: string; packets: number }[];
  return rows.filter((x) => x.reason === reason).reduce((a, x) => a + Number(x.packets), 0);
}

t.test('a pod under default deny is denied from its first packet, both ways', async (tt) => {
  const lab = uniquePrefix('pa');
  const { status } = labUp(tt, lab, ['--nodes', '1', '--pods-per-node', '1']);
  const n1 = status.nodes[0]!;
  const old = status.pods[0]!;
  const exec = (args: string[]) => sluice(['lab', 'exec', '--name', lab, '--node', n1.name, '--', 'sluice', ...args]);
  const dir = tempDir(tt, `${lab}d`);
  writeFileSync(join(dir, 'deny.yaml'), DENY_ALL);
  tt.equal(exec(['policy', 'apply', '-f', join(dir, 'deny.yaml')]).status, 0, 'default deny in namespace fresh');

  // The address the new pod will get: the lowest free one of the node's block.
  const base = n1.podCIDR!.split('/')[0]!.split('.').map(Number);
  const taken = new Set(status.pods.map((p) => p.ip));
  let ip = '';
  for (let h = 1; h < 255 && !ip; h++) if (!taken.has(`${base[0]}.${base[1]}.${base[2]}.${h}`)) ip = `${base[0]}.${base[1]}.${base[2]}.${h}`;

  const netns = `${lab}-n1.fresh.new`;
  tt.equal(sh('ip', ['netns', 'add', netns]).status, 0, 'the new pod\'s namespace, before the ADD');
  tt.teardown(() => { sh('ip', ['netns', 'del', netns]); });
  const nsPath = `/run/netns/${netns}`;
  sh('ip', ['-n', netns, 'link', 'set', 'lo', 'up']);

  const capNew = background(tt, nsPath, ['tcpdump', '-i', 'any', '-n', '-l', 'icmp']);
  const capOld = background(tt, old.netns, ['tcpdump', '-i', 'eth0', '-n', '-l', `icmp and src host ${ip}`]);
  await waitOutput(capNew, /listening on/, 'tcpdump in the new pod');
  await waitOutput(capOld, /listening on/, 'tcpdump in the old pod');
  const before = { egress: counter(n1.netns, n1.config, 'drop_policy_egress'), ingress: counter(n1.netns, n1.config, 'drop_policy_ingress') };
  // Into the new pod: from the old one, every 10 ms. Out of it: a loop that pings as soon as it has an address.
  const toNew = background(tt, old.netns, ['ping', '-n', '-i', '0.01', '-W', '1', ip]);
  const fromNew = background(tt, nsPath, ['sh', '-c', `end=$(($(date +%s)+8)); while [ $(date +%s) -lt $end ]; do ping -n -q -c 100 -i 0.01 -W 1 ${old.ip} >/dev/null 2>&1; done`]);
  await sleep(300);

  const client = new AgentClient(n1.socket, { timeoutMs: 60_000 });
  const added = await client.post('/v1/cni/add', {
    containerId: `${lab}.fresh.new`, ifname: 'eth0', netns: nsPath, podNamespace: 'fresh', podName: 'new', labels: { app: 'new' },
  }) as { endpoint: { ip: string; id: number } };
  tt.teardown(async () => { await client.post('/v1/cni/del', { containerId: `${lab}.fresh.new`, ifname: 'eth0' }).catch(() => {}); });
  tt.equal(added.endpoint.ip, ip, `the new pod got ${ip}, the address pinged before the ADD`);

  // The ADD has answered: the entry is complete already.
  const eps = JSON.parse(exec(['bpf', 'endpoints', '-o', 'json']).stdout || '[]') as { ip: string; identity: number }[];
  const mine = eps.find((e) => e.ip === ip);
  tt.ok(mine && mine.identity > 0, `sl_endpoints holds ${ip} with its identity when the ADD answers (${mine?.identity})`);

  await sleep(3000);
  await toNew.stop();
  await fromNew.stop();
  await capNew.stop();
  await capOld.stop();
  const intoNew = capNew.out().split('\n').filter((l) => / IP /.test(l) && l.includes(`${old.ip} > ${ip}:`));
  const outOfNew = capOld.out().split('\n').filter((l) => / IP /.test(l));
  tt.same(intoNew, [], 'not one packet from the old pod reached the new one');
  tt.same(outOfNew, [], 'not one packet from the new pod reached the old one');
  const after = { egress: counter(n1.netns, n1.config, 'drop_policy_egress'), ingress: counter(n1.netns, n1.config, 'drop_policy_ingress') };
  tt.ok(after.egress - before.egress > 10, `the new pod's pings were sent and dropped by its egress policy (${after.egress - before.egress})`);
  tt.ok(after.ingress - before.ingress > 10, `the old pod's pings were dropped by the new pod's ingress policy (${after.ingress - before.ingress})`);
});
