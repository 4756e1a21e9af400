/**
 * Differential test of NetworkPolicy: random policy sets and random connections, decided
 * twice, by the reference evaluator (src/policy/evaluate.ts, written from the API's
 * definition) and by the real BPF programs (the compiler's sl_policy entries, run through
 * BPF_PROG_TEST_RUN), and the verdicts compared.
 *
 * The cluster: two namespaces, eight pods on this node (labels from small sets, declared
 * named ports), three addresses outside the cluster. ipBlocks cover outside addresses and
 * the pods' own, whole, in part and with excepts. Connections: pod -> pod and pod ->
 * outside through from_container (egress of the source, ingress of a local destination),
 * outside -> pod through from_netdev (ingress). TCP and UDP (SCTP frames are not built
 * here; the kernel has no SCTP). Conntrack is emptied before each packet, so every packet
 * is a new flow and policy decides it. A fixed seed makes a failure reproducible; set
 * SLUICE_POLICY_SEED to explore others.
 */
import t from 'tap';
import { bpfHarness } from '../helpers/bpf-harness.js';
import { IS_ROOT, uniquePrefix } from '../helpers/env.js';
import * as P from '../helpers/packets.js';
import type { PolicyKey, PolicyValue } from '../../src/maps/policy.js';
import { compilePolicies } from '../../src/policy/compile.js';
import { createCluster, evaluate, type Connection, type Pod } from '../../src/policy/evaluate.js';
import { validatePolicies } from '../../src/policy/parse.js';
import { FIRST_POD_IDENTITY, identityLabels } from '../../src/identity/identity.js';
import type { NetworkPolicy } from '../../src/policy/types.js';

const SETS = Number(process.env.SLUICE_POLICY_SETS ?? 300);
const CONNS = Number(process.env.SLUICE_POLICY_CONNS ?? 40);
let seed = Number(process.env.SLUICE_POLICY_SEED ?? 20261122);
const rnd = () => {
  // mulberry32
  seed = (seed + 0x6d2b79f5) | 0;
  let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
  return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
};
const pick = <T>(a: readonly T[]): T => a[Math.floor(rnd() * a.length)]!;
const maybe = (p = 0.5) => rnd() < p;

const NAMESPACES: Record<string, Record<string, string>> = { a: { team: 'x' }, b: { team: 'y', env: 'prod' } };
const APPS = ['web', 'db', 'cli'];
const PODS: Pod[] = Array.from({ length: 8 }, (_, i) => ({
  namespace: i % 2 ? 'b' : 'a',
  name: `p${i}`,
  labels: { app: APPS[i % 3]!, ...(i % 4 === 0 ? { tier: 'front' } : {}) },
  ip: `10.244.0.${10 + i}`,
  ports: i % 3 === 0 ? [{ name: 'http', port: 80, protocol: 'TCP' as const }] : i % 3 === 1 ? [{ name: 'dns', port: 53, protocol: 'UDP' as const }, { name: 'http', port: 8080, protocol: 'TCP' as const }] : [],
}));
const OUTSIDE = ['192.0.2.5', '198.51.100.7', '203.0.113.9'];
const PORTS = [53, 80, 443, 8080, 1000, 1001, 32000];

function randomSelector(): Record<string, unknown> {
  const r = rnd();
  if (r < 0.3) return {};
  if (r < 0.7) return { matchLabels: maybe() ? { app: pick(APPS) } : { tier: 'front' } };
  const op = pick(['In', 'NotIn', 'Exists', 'DoesNotExist']);
  return { matchExpressions: [{ key: pick(['app', 'tier']), operator: op, ...(op === 'In' || op === 'NotIn' ? { values: [pick(APPS), pick(['front', 'db'])] } : {}) }] };
}

function randomPeer(): Record<string, unknown> {
  const r = rnd();
  if (r < 0.25) {
    // Outside addresses, and the pods' (10.244.0.10-17): whole, in part, and with excepts
    // that cut pods out, so two pods of one identity can get different verdicts.
    return { ipBlock: pick([
      { cidr: '192.0.2.0/24' },
      { cidr: '0.0.0.0/0', except: [pick(['198.51.100.0/24', '203.0.113.0/24', '10.244.0.0/16'])] },
      { cidr: '10.244.0.0/16' },
      { cidr: '10.244.0.8/29' },
      { cidr: '10.244.0.0/24', except: [pick(['10.244.0.12/30', '10.244.0.10/32', '10.244.0.16/28'])] },
      { cidr: pick(PODS).ip + '/32' },
      { cidr: '10.244.0.8/29', except: ['10.244.0.12/31', '10.244.0.15/32'] },
    ]) };
  }
  if (r < 0.5) return { podSelector: randomSelector() };
  if (r < 0.75) return { namespaceSelector: maybe() ? { matchLabels: { team: pick(['x', 'y']) } } : {} };
  return { namespaceSelector: { matchLabels: { team: pick(['x', 'y']) } }, podSelector: randomSelector() };
}

function randomPorts(): Record<string, unknown>[] | undefined {
  if (maybe(0.35)) return undefined;
  return Array.from({ length: 1 + Math.floor(rnd() * 2) }, () => {
    const r = rnd();
    const protocol = maybe(0.7) ? 'TCP' : 'UDP';
    if (r < 0.4) return { protocol, port: pick(PORTS) };
    if (r < 0.6) return { protocol, port: pick(['http', 'dns']) };
    if (r < 0.8) return { protocol, port: 1000, endPort: pick([1000, 1001, 40000]) };
    return { protocol };
  });
}

function randomRules(): Record<string, unknown>[] {
  return Array.from({ length: Math.floor(rnd() * 3) }, () => {
    const peers = maybe(0.3) ? undefined : Array.from({ length: 1 + Math.floor(rnd() * 2) }, randomPeer);
    const ports = randomPorts();
    return { ...(peers ? { peers } : {}), ...(ports ? { ports } : {}) };
  });
}

function randomPolicies(): NetworkPolicy[] {
  const n = Math.floor(rnd() * 4);
  const raw = Array.from({ length: n }, (_, i) => {
    const ingress = maybe(0.7) ? randomRules() : undefined;
    const egress = maybe(0.5) ? randomRules() : undefined;
    const types = maybe(0.5) ? undefined : pick([['Ingress'], ['Egress'], ['Ingress', 'Egress']]);
    return {
      apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy',
      metadata: { name: `pol${i}`, namespace: pick(['a', 'b']) },
      spec: {
        podSelector: randomSelector(),
        ...(types ? { policyTypes: types } : {}),
        ...(ingress ? { ingress: ingress.map((r) => ({ ...(r.peers ? { from: r.peers } : {}), ...(r.ports ? { ports: r.ports } : {}) })) } : {}),
        ...(egress ? { egress: egress.map((r) => ({ ...(r.peers ? { to: r.peers } : {}), ...(r.ports ? { ports: r.ports } : {}) })) } : {}),
      },
    };
  });
  return validatePolicies(raw, 'random');
}

if (!IS_ROOT) {
  t.plan(0, 'needs root (BPF)');
} else {
  const h = bpfHarness(t, uniquePrefix('pd'));
  const fc = h.load('from_container', { sl_gateway_ip: '169.254.1.1' });
  const fn = h.load('from_netdev');
  const endpoints = fc.map<{ ip: string }, { ifindex: number; id: number; mac: string; host_mac: string; identity: number; flags: number }>('sl_endpoints');
  const policyMap = fc.map<PolicyKey, PolicyValue>('sl_policy');
  const ipcache = fc.map<{ prefixlen: number; ip: string }, { identity: number; tunnel_endpoint: string; flags: number }>('sl_ipcache');
  const policyCidr = fc.map<{ prefixlen: number; ip: string }, { identity: number }>('sl_policy_cidr');
  const ct = fc.map('sl_ct_v2');
  const metrics = fc.map<{ reason: string | number; dir: string | number }, { packets: bigint; bytes: bigint }[]>('sl_metrics');

  // Identities: one per distinct (namespace, labels), as the allocator would give them.
  const identities = new Map<number, Record<string, string>>();
  const identityOf = new Map<string, number>();
  for (const p of PODS) {
    const labels = identityLabels(p.namespace, p.labels ?? {});
    const k = JSON.stringify(labels);
    if (!identityOf.has(k)) {
      identityOf.set(k, FIRST_POD_IDENTITY + identityOf.size);
      identities.set(identityOf.get(k)!, labels);
    }
  }
  const podIdentity = (p: Pod) => identityOf.get(JSON.stringify(identityLabels(p.namespace, p.labels ?? {})))!;
  const identityPorts = new Map<number, Pod['ports'] & object>();
  for (const p of PODS) identityPorts.set(podIdentity(p), [...(identityPorts.get(podIdentity(p)) ?? []), ...(p.ports ?? [])]);
  const mac = (i: number) => `0a:58:0a:f4:00:${(16 + i).toString(16)}`;

  /** What the datapath says: true allowed, false denied by policy; throws on anything else. */
  const datapath = (c: Connection): boolean => {
    const src = typeof c.src === 'string' ? undefined : PODS.findIndex((p) => p.namespace === (c.src as { namespace: string }).namespace && p.name === (c.src as { name: string }).name);
    const dst = typeof c.dst === 'string' ? undefined : PODS.findIndex((p) => p.namespace === (c.dst as { namespace: string }).namespace && p.name === (c.dst as { name: string }).name);
    const srcIp = src === undefined ? (c.src as string) : PODS[src]!.ip;
    const dstIp = dst === undefined ? (c.dst as string) : PODS[dst]!.ip;
    // The sender sits behind loopback (the test run's device); every other pod elsewhere.
    for (const [i, p] of PODS.entries()) endpoints.update({ ip: p.ip }, { ifindex: i === src ? 1 : 100 + i, id: i + 1, mac: mac(i), host_mac: 'ee:ee:00:00:00:01', identity: podIdentity(p), flags: 0 });
    ct.clear();
    metrics.clear();
    const addrs = src === undefined
      ? { srcMac: '02:00:00:00:00:01', dstMac: P.ZERO_MAC, src: srcIp, dst: dstIp }
      : { srcMac: mac(src), dstMac: 'ee:ee:00:00:00:01', src: srcIp, dst: dstIp };
    const frame = c.protocol === 'TCP' ? P.tcpFrame(addrs, 40000, c.port, Buffer.alloc(0), { flags: P.TCP_SYN }) : P.udpFrame(addrs, 40000, c.port);
    const prog = src === undefined ? fn.program('from_netdev') : fc.program('from_container');
    const r = h.run(prog, frame);
    if (!r) throw new Error('the kernel refused the frame');
    const counted = Object.keys(h.counters(metrics));
    if (counted.some((k) => k.startsWith('drop_policy_'))) return false;
    if (r.retval === 2) throw new Error(`dropped for another reason: ${counted.join(', ')}`);
    return true;
  };

  t.test(`${SETS} random policy sets x ${CONNS} connections: the datapath agrees with the reference evaluator`, async (tt) => {
    const startSeed = seed;
    let compared = 0;
    let allowed = 0;
    const mismatches: string[] = [];
    for (let set = 0; set < SETS && mismatches.length < 10; set++) {
      const policies = randomPolicies();
      const compiled = compilePolicies({
        policies, namespaces: new Map(Object.entries(NAMESPACES)), identities, identityPorts,
        podPorts: new Map(PODS.filter((p) => p.ports?.length).map((p) => [p.ip, p.ports!])),
        endpoints: PODS.map((p, i) => ({ id: i + 1, namespace: p.namespace, labels: p.labels ?? {}, ports: p.ports ?? [] })),
      });
      policyMap.clear();
      for (const { key, value } of compiled.entries.values()) policyMap.update(key, value);
      ipcache.clear();
      policyCidr.clear();
      for (const [cidr, id] of compiled.cidrIdentities) {
        const [ip, len] = cidr.split('/');
        ipcache.update({ prefixlen: Number(len), ip: ip! }, { identity: id, tunnel_endpoint: '0.0.0.0', flags: 0 });
      }
      for (const [cidr, id] of compiled.addressIdentities) {
        const [ip, len] = cidr.split('/');
        policyCidr.update({ prefixlen: Number(len), ip: ip! }, { identity: id });
      }
      const cluster = createCluster({ policies, namespaces: NAMESPACES, pods: PODS });
      for (let i = 0; i < CONNS; i++) {
        const kind = rnd();
        const pod = () => { const p = pick(PODS); return { namespace: p.namespace, name: p.name }; };
        let src: Connection['src'] = pod();
        let dst: Connection['dst'] = pod();
        if (kind < 0.2) src = pick(OUTSIDE);
        else if (kind < 0.35) dst = pick(OUTSIDE);
        if (typeof src !== 'string' && typeof dst !== 'string' && src.name === dst.name) continue;
        const c: Connection = { src, dst, protocol: maybe(0.7) ? 'TCP' : 'UDP', port: pick(PORTS) };
        const want = evaluate(cluster, c).allowed;
        const got = datapath(c);
        compared++;
        if (want) allowed++;
        if (want !== got) {
          const end = (e: Connection['src']) => (typeof e === 'string' ? e : `${e.namespace}/${e.name}`);
          mismatches.push(`set ${set}: ${end(c.src)} -> ${end(c.dst)} ${c.protocol}/${c.port}: evaluator ${want ? 'allows' : 'denies'}, datapath ${got ? 'allows' : 'denies'}\n${JSON.stringify(policies)}`);
        }
      }
    }
    tt.same(mismatches, [], `every verdict agrees (seed ${startSeed})`);
    tt.ok(compared >= SETS * CONNS * 0.8, `${compared} connections compared`);
    tt.ok(allowed > compared * 0.1 && allowed < compared * 0.9, `both verdicts occur (${allowed} allowed of ${compared})`);
    tt.comment(`${compared} connections over ${SETS} random policy sets: ${allowed} allowed, ${compared - allowed} denied, ${mismatches.length} mismatches`);
  });
}
