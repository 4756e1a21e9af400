/**
 * `scripts/bench dataplanes`: the targets and how each is built. Pure: the build of a
 * target is a list of commands (argv arrays) run in order by the rig; the unit tests
 * read them. Everything lives in network namespaces `slbench-dp-*`; nothing is created
 * in the root namespace. Addresses come from 10.251.0.0/16 (the lab uses 10.244.0.0/16
 * for pods and 198.18.0.0/15 for its underlay; same-node's baseline uses 10.250.0.0/24).
 *
 *   veth              dp-veth-a ──veth── dp-veth-b                       10.251.1.1 → .2
 *   routed            dp-rt-n1 ── br0 in dp-rt-sw ── dp-rt-n2          10.251.2.1 → .2 (node to node)
 *   bridge            dp-br-a ── br0 in dp-br-node ── dp-br-b            10.251.3.1 → .2
 *   bridge-iptables-N like bridge, N FORWARD rules in the node, br_netfilter on there
 *                                                                        10.251.(20+i).1 → .2
 *   flannel-vxlan     dp-fl-p1 ─ cni0 dp-fl-n1 ─ flannel.1 (VXLAN 8473) ═ underlay ═ dp-fl-n2 ─ cni0 ─ dp-fl-p2
 *                     pods 10.251.5.2 → 10.251.6.2, underlay 10.251.4.1/.2
 *   host-gw           dp-hg-p1 ─ cni0 dp-hg-n1 ── underlay ── dp-hg-n2 ─ cni0 ─ dp-hg-p2
 *                     pods 10.251.8.2 → 10.251.9.2, underlay 10.251.7.1/.2
 *   bridge-masq       dp-mq-p ─ br0 dp-mq-node (Docker's iptables: MASQUERADE) ── underlay ── dp-mq-x (outside host)
 *                     pod 10.251.10.2 → 10.251.11.201, the node's uplink 10.251.11.1; the outside
 *                     host has no route to 10.251.10.0/24: only a translated flow is answered
 *   sluice-*          pods of `sluice lab` labs named slbenchdp* (see rig.ts); sluice-masq: pod
 *                     n1-p1 of the direct lab → the lab's outside host `ext` (masquerade in BPF)
 *
 * Every two-node target's nodes are joined as a lab's are: each node's uplink (ul0) is a
 * veth whose peer is a port of one Linux bridge in a switch namespace (dp-<short>-sw),
 * br_netfilter off there as in the lab's underlay. Same hops on the underlay for all, so
 * a ratio compares the dataplanes, not the wiring.
 *   sluice-policy-N   like sluice-same-node, the server pod behind N NetworkPolicy ingress
 *                     rules (src/bench/policy.ts's ruleSet: the matching rule last)
 */
import { UNDERLAY_SYSCTLS } from '../../lab/plan.js';

export const NS_PREFIX = 'slbench-dp-';
/** The address range every netns-based target takes its addresses from. */
export const ADDRESS_RANGE = '10.251.0.0/16';
/**
 * Pod MTUs, as each system would set them and as the sluice target compared with it has:
 * sluice's pods get 1500 in direct mode (the lab's same-node and direct pods) and 1450 in
 * vxlan mode, so veth, bridge, bridge-iptables-N and host-gw pods get 1500 and
 * flannel-vxlan's pods 1450 (flannel's VXLAN overhead, as in vxlan mode).
 */
export const POD_MTU = 1500;
export const VXLAN_POD_MTU = 1450;
/** flannel's default port is 8472, which sluice's collect_md VXLAN device holds in its namespaces. */
export const FLANNEL_VXLAN_PORT = 8473;
export const MAX_RULE_COUNTS = 10;

/** same-node: pod to pod on one node; two-node: pod to pod across the underlay; outside: pod to a host outside the cluster. */
export type Kind = 'same-node' | 'two-node' | 'outside';
export type Builder = 'netns' | 'sluice';

export interface TargetInfo {
  name: string;
  kind: Kind;
  builder: Builder;
  /** For bridge-iptables-N. */
  rules?: number;
  /** For sluice targets: the lab mode. */
  mode?: 'vxlan' | 'direct' | 'hybrid';
}

/**
 * The limit each target's figures are divided by: veth for same-node; routed (two nodes'
 * uplinks on the underlay, no pod, no translation) for two-node and outside targets.
 */
export function limitOf(kind: Kind): string {
  return kind === 'same-node' ? 'veth' : 'routed';
}

export function iptablesTarget(n: number): string {
  return `bridge-iptables-${n}`;
}

/** sluice same-node with the same N rules as NetworkPolicy on the server pod (the matching rule last). */
export function sluicePolicyTarget(n: number): string {
  return `sluice-policy-${n}`;
}

/** Every target a run with these rule counts can measure, in report order. */
export function allTargets(rules: readonly number[]): TargetInfo[] {
  return [
    { name: 'veth', kind: 'same-node', builder: 'netns' },
    { name: 'bridge', kind: 'same-node', builder: 'netns' },
    ...rules.map((n): TargetInfo => ({ name: iptablesTarget(n), kind: 'same-node', builder: 'netns', rules: n })),
    { name: 'sluice-same-node', kind: 'same-node', builder: 'sluice', mode: 'direct' },
    ...rules.filter((n) => n > 0).map((n): TargetInfo => ({ name: sluicePolicyTarget(n), kind: 'same-node', builder: 'sluice', mode: 'direct', rules: n })),
    { name: 'routed', kind: 'two-node', builder: 'netns' },
    { name: 'flannel-vxlan', kind: 'two-node', builder: 'netns' },
    { name: 'host-gw', kind: 'two-node', builder: 'netns' },
    { name: 'sluice-vxlan', kind: 'two-node', builder: 'sluice', mode: 'vxlan' },
    { name: 'sluice-direct', kind: 'two-node', builder: 'sluice', mode: 'direct' },
    { name: 'sluice-hybrid', kind: 'two-node', builder: 'sluice', mode: 'hybrid' },
    { name: 'bridge-masq', kind: 'outside', builder: 'netns' },
    { name: 'sluice-masq', kind: 'outside', builder: 'sluice', mode: 'direct' },
  ];
}

/**
 * The order targets are measured in within a round: each target of the comparisons
 * next to the one it is compared with (veth, sluice-same-node, sluice-policy-N; bridge,
 * bridge-iptables-N; routed, flannel-vxlan, sluice-vxlan, host-gw, sluice-direct; bridge-masq,
 * sluice-masq), so that a
 * pair is measured back to back, in the same state of the machine.
 */
const MEASURE_ORDER = ['veth', 'sluice-same-node', 'sluice-policy-', 'bridge', 'bridge-iptables-', 'routed', 'flannel-vxlan', 'sluice-vxlan', 'host-gw', 'sluice-direct', 'sluice-hybrid', 'bridge-masq', 'sluice-masq'];

/**
 * Round `round`'s (from 1) measurement order: MEASURE_ORDER in odd rounds, reversed in even
 * ones, so that a drift of the machine during a round (this VM's figures move by up to 2×
 * over minutes) favours neither side of a pair over the rounds.
 */
export function measurementOrder<T extends { name: string; rules?: number }>(targets: readonly T[], round: number): T[] {
  const rank = (t: T) => {
    const exact = MEASURE_ORDER.indexOf(t.name);
    return exact >= 0 ? exact : MEASURE_ORDER.findIndex((p) => p.endsWith('-') && t.name.startsWith(p));
  };
  const order = [...targets].sort((a, b) => rank(a) - rank(b) || (a.rules ?? 0) - (b.rules ?? 0));
  return round % 2 === 0 ? order.reverse() : order;
}

/** Measured unless --targets says otherwise (sluice-hybrid costs a third lab: ask for it). */
export const OPTIONAL_TARGETS: readonly string[] = ['sluice-hybrid'];

/**
 * The targets to measure: `wanted` (or the defaults) in report order, plus the limit
 * of each kind present (a ratio needs it). Throws on an unknown name.
 */
export function selectTargets(rules: readonly number[], wanted: readonly string[] | undefined): TargetInfo[] {
  const all = allTargets(rules);
  if (!wanted) return all.filter((t) => !OPTIONAL_TARGETS.includes(t.name));
  const known = new Set(all.map((t) => t.name));
  const unknown = wanted.filter((w) => !known.has(w));
  if (unknown.length) {
    throw new Error(`unknown target${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')} (known: ${[...known].join(', ')}; bridge-iptables-N and sluice-policy-N take N from --rules)`);
  }
  const chosen = new Set(wanted);
  for (const t of all) if (chosen.has(t.name)) chosen.add(limitOf(t.kind));
  return all.filter((t) => chosen.has(t.name));
}

// ---------------------------------------------------------------------------------
// Building: argv lists

export type Cmd = string[];

export interface Endpoint {
  ns: string;
  ip: string;
}

export interface NetnsPlan {
  target: string;
  namespaces: string[];
  commands: Cmd[];
  client: Endpoint;
  server: Endpoint;
  /** bridge-iptables-N: where the rules are, how many, and the address they accept. */
  iptables?: { ns: string; rules: number; file: string; accept: string };
  /** bridge-masq: the iptables-restore file of Docker's rules and its path (the rig writes it). */
  masquerade?: { ns: string; file: string; rules: string };
  mtu: number;
}

const ns = (short: string) => `${NS_PREFIX}${short}`;
const inNs = (n: string, ...argv: string[]): Cmd => ['nsenter', `--net=/run/netns/${n}`, ...argv];
const ipIn = (n: string, ...argv: string[]): Cmd => ['ip', '-n', n, ...argv];

/** A namespace with lo up, IPv6 off (as sluice's pods) and forwarding as asked. */
function addNs(n: string, forward = false): Cmd[] {
  return [
    ['ip', 'netns', 'add', n],
    ipIn(n, 'link', 'set', 'lo', 'up'),
    inNs(n, 'sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1',
      `net.ipv4.ip_forward=${forward ? 1 : 0}`),
  ];
}

/** A veth `dev` in `a` whose peer `peer` is in `b`, both with `mtu`. */
function vethBetween(a: string, dev: string, b: string, peer: string, mtu: number): Cmd {
  return ipIn(a, 'link', 'add', dev, 'mtu', String(mtu), 'type', 'veth', 'peer', 'name', peer, 'mtu', String(mtu), 'netns', b);
}

function addrUp(n: string, dev: string, cidr: string): Cmd[] {
  return [ipIn(n, 'addr', 'add', cidr, 'dev', dev), ipIn(n, 'link', 'set', dev, 'up')];
}

/** A Linux bridge `br` in node `n` with `cidr` (the pods' gateway); br_netfilter on or off there. */
function bridge(n: string, br: string, cidr: string, nfCallIptables: boolean, mtu = POD_MTU): Cmd[] {
  return [
    ipIn(n, 'link', 'add', br, 'mtu', String(mtu), 'type', 'bridge'),
    ...addrUp(n, br, cidr),
    // Per network namespace on this kernel (br_netfilter is built in; new namespaces start at 1).
    inNs(n, 'sysctl', '-qw', `net.bridge.bridge-nf-call-iptables=${nfCallIptables ? 1 : 0}`),
  ];
}

/** A pod namespace on bridge `br` of node `n`: host side `hostDev`, eth0 with `ip/24`, default via `gw`. */
function podOnBridge(n: string, br: string, hostDev: string, pod: string, ipCidr: string, gw: string | undefined, mtu = POD_MTU): Cmd[] {
  return [
    ...addNs(pod),
    vethBetween(n, hostDev, pod, 'eth0', mtu),
    ipIn(n, 'link', 'set', hostDev, 'master', br),
    ipIn(n, 'link', 'set', hostDev, 'up'),
    ...addrUp(pod, 'eth0', ipCidr),
    ...(gw ? [ipIn(pod, 'route', 'add', 'default', 'via', gw)] : []),
  ];
}

/**
 * The underlay of two-node target `short`: switch namespace `dp-<short>-sw` with bridge br0
 * (br_netfilter off, as the lab's underlay: src/lab/plan.ts), and in each node `ul0`, a
 * veth whose peer `nd<i>` is a port of br0. MTU 1500, as the lab's.
 */
function underlaySwitch(short: string, nodes: readonly string[]): { sw: string; commands: Cmd[] } {
  const sw = ns(`${short}-sw`);
  const commands: Cmd[] = [
    ...addNs(sw),
    ipIn(sw, 'link', 'add', 'br0', 'type', 'bridge'),
    ipIn(sw, 'link', 'set', 'br0', 'up'),
    inNs(sw, 'sysctl', '-qew', ...UNDERLAY_SYSCTLS),
  ];
  nodes.forEach((node, k) => {
    const port = `nd${k + 1}`;
    commands.push(vethBetween(sw, port, node, 'ul0', 1500), ipIn(sw, 'link', 'set', port, 'master', 'br0'), ipIn(sw, 'link', 'set', port, 'up'));
  });
  return { sw, commands };
}

export function planVeth(): NetnsPlan {
  const a = ns('veth-a');
  const b = ns('veth-b');
  return {
    target: 'veth', namespaces: [a, b], mtu: POD_MTU,
    commands: [...addNs(a), ...addNs(b), vethBetween(a, 'eth0', b, 'eth0', POD_MTU), ...addrUp(a, 'eth0', '10.251.1.1/24'), ...addrUp(b, 'eth0', '10.251.1.2/24')],
    client: { ns: a, ip: '10.251.1.1' }, server: { ns: b, ip: '10.251.1.2' },
  };
}

export function planRouted(): NetnsPlan {
  const a = ns('rt-n1');
  const b = ns('rt-n2');
  const u = underlaySwitch('rt', [a, b]);
  return {
    target: 'routed', namespaces: [a, b, u.sw], mtu: 1500,
    commands: [...addNs(a, true), ...addNs(b, true), ...u.commands, ...addrUp(a, 'ul0', '10.251.2.1/24'), ...addrUp(b, 'ul0', '10.251.2.2/24')],
    client: { ns: a, ip: '10.251.2.1' }, server: { ns: b, ip: '10.251.2.2' },
  };
}

/** bridge (rules undefined) or bridge-iptables-N (the i-th rule count, i from 0). */
export function planBridge(rules?: { n: number; index: number; file: string }): NetnsPlan {
  const short = rules ? `ipt${rules.n}` : 'br';
  const net = rules ? `10.251.${20 + rules.index}` : '10.251.3';
  const node = ns(`${short}-node`);
  const a = ns(`${short}-a`);
  const b = ns(`${short}-b`);
  const commands = [
    ...addNs(node),
    ...bridge(node, 'br0', `${net}.254/24`, rules !== undefined),
    ...podOnBridge(node, 'br0', 'veth-a', a, `${net}.1/24`, undefined),
    ...podOnBridge(node, 'br0', 'veth-b', b, `${net}.2/24`, undefined),
    ...(rules ? [inNs(node, 'iptables-restore', rules.file)] : []),
  ];
  return {
    target: rules ? iptablesTarget(rules.n) : 'bridge', namespaces: [node, a, b], commands, mtu: POD_MTU,
    client: { ns: a, ip: `${net}.1` }, server: { ns: b, ip: `${net}.2` },
    ...(rules ? { iptables: { ns: node, rules: rules.n, file: rules.file, accept: `${net}.0/24` } } : {}),
  };
}

/** The VXLAN device's MAC on flannel node i (fixed, so each node can name its peer's). */
export function flannelMac(i: number): string {
  return `02:00:0a:fb:04:${i.toString(16).padStart(2, '0')}`;
}

/** Two nodes with a pod each on a cni0 bridge; `vxlan`: flannel's vxlan backend, else host-gw. */
function planTwoNodes(target: 'flannel-vxlan' | 'host-gw'): NetnsPlan {
  const vx = target === 'flannel-vxlan';
  const short = vx ? 'fl' : 'hg';
  const under = vx ? '10.251.4' : '10.251.7';
  const podNet = (i: number) => (vx ? `10.251.${4 + i}` : `10.251.${7 + i}`);
  const node = (i: number) => ns(`${short}-n${i}`);
  const pod = (i: number) => ns(`${short}-p${i}`);
  const mtu = vx ? VXLAN_POD_MTU : POD_MTU;
  const u = underlaySwitch(short, [node(1), node(2)]);
  const commands: Cmd[] = [...addNs(node(1), true), ...addNs(node(2), true), ...u.commands];
  for (const i of [1, 2]) {
    const j = 3 - i;
    const n = node(i);
    commands.push(...addrUp(n, 'ul0', `${under}.${i}/24`));
    commands.push(...bridge(n, 'cni0', `${podNet(i)}.1/24`, false, mtu));
    commands.push(...podOnBridge(n, 'cni0', 'veth0', pod(i), `${podNet(i)}.2/24`, `${podNet(i)}.1`, mtu));
    if (vx) {
      // flannel's vxlan backend: flannel.1 holds <subnet>.0/32; the peer's subnet is routed via
      // the peer's .0 onlink, whose neighbour entry is the peer's VTEP MAC, whose fdb entry is
      // the peer's underlay address. No learning, no multicast.
      commands.push(
        ipIn(n, 'link', 'add', 'flannel.1', 'address', flannelMac(i), 'type', 'vxlan', 'id', '1', 'local', `${under}.${i}`,
          'dev', 'ul0', 'dstport', String(FLANNEL_VXLAN_PORT), 'nolearning'),
        ipIn(n, 'link', 'set', 'flannel.1', 'mtu', String(VXLAN_POD_MTU)),
        ...addrUp(n, 'flannel.1', `${podNet(i)}.0/32`),
        ipIn(n, 'neigh', 'replace', `${podNet(j)}.0`, 'lladdr', flannelMac(j), 'dev', 'flannel.1', 'nud', 'permanent'),
        inNs(n, 'bridge', 'fdb', 'append', flannelMac(j), 'dev', 'flannel.1', 'dst', `${under}.${j}`),
        ipIn(n, 'route', 'add', `${podNet(j)}.0/24`, 'via', `${podNet(j)}.0`, 'dev', 'flannel.1', 'onlink'),
      );
    } else {
      commands.push(ipIn(n, 'route', 'add', `${podNet(j)}.0/24`, 'via', `${under}.${j}`, 'dev', 'ul0'));
    }
  }
  return {
    target, namespaces: [pod(1), pod(2), node(1), node(2), u.sw], commands, mtu,
    client: { ns: pod(1), ip: `${podNet(1)}.2` }, server: { ns: pod(2), ip: `${podNet(2)}.2` },
  };
}

/** bridge-masq's pod network, the node's uplink and the outside host. */
export const MASQ_NET = { pods: '10.251.10.0/24', gateway: '10.251.10.1', pod: '10.251.10.2', uplink: '10.251.11.1', outside: '10.251.11.201' } as const;

/**
 * The rules Docker (24, default bridge network, no published port) writes for its bridge
 * `br` with pods in `pods`, as iptables-save shows them: FORWARD policy DROP with its
 * DOCKER-USER and isolation chains, replies by conntrack state, and the one nat rule that
 * masquerades what leaves by another interface. flannel's is the same MASQUERADE rule
 * (with RETURN rules for the cluster's own ranges first).
 */
export function dockerMasqueradeRules(pods: string, br: string): string {
  return [
    '*nat', ':PREROUTING ACCEPT [0:0]', ':INPUT ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]', ':POSTROUTING ACCEPT [0:0]', ':DOCKER - [0:0]',
    '-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER',
    '-A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKER',
    `-A POSTROUTING -s ${pods} ! -o ${br} -j MASQUERADE`,
    `-A DOCKER -i ${br} -j RETURN`,
    'COMMIT',
    '*filter', ':INPUT ACCEPT [0:0]', ':FORWARD DROP [0:0]', ':OUTPUT ACCEPT [0:0]', ':DOCKER - [0:0]',
    ':DOCKER-ISOLATION-STAGE-1 - [0:0]', ':DOCKER-ISOLATION-STAGE-2 - [0:0]', ':DOCKER-USER - [0:0]',
    '-A FORWARD -j DOCKER-USER',
    '-A FORWARD -j DOCKER-ISOLATION-STAGE-1',
    `-A FORWARD -o ${br} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`,
    `-A FORWARD -o ${br} -j DOCKER`,
    `-A FORWARD -i ${br} ! -o ${br} -j ACCEPT`,
    `-A FORWARD -i ${br} -o ${br} -j ACCEPT`,
    `-A DOCKER-ISOLATION-STAGE-1 -i ${br} ! -o ${br} -j DOCKER-ISOLATION-STAGE-2`,
    '-A DOCKER-ISOLATION-STAGE-1 -j RETURN',
    `-A DOCKER-ISOLATION-STAGE-2 -o ${br} -j DROP`,
    '-A DOCKER-ISOLATION-STAGE-2 -j RETURN',
    '-A DOCKER-USER -j RETURN',
    'COMMIT', '',
  ].join('\n');
}
/** The line of POSTROUTING (from 1) that is the MASQUERADE rule in dockerMasqueradeRules. */
export const MASQUERADE_RULE = 1;

/**
 * A pod on a Docker-style bridge in a node whose uplink shares the underlay with an outside
 * host: the pod's packets to it are routed out of the uplink and masqueraded by iptables.
 * br_netfilter on, as Docker turns it on. `file`: where the rig writes the rules.
 */
export function planBridgeMasq(file: string): NetnsPlan {
  const node = ns('mq-node');
  const pod = ns('mq-p');
  const outside = ns('mq-x');
  const u = underlaySwitch('mq', [node, outside]);
  const commands: Cmd[] = [
    ...addNs(node, true), ...addNs(outside), ...u.commands,
    ...addrUp(node, 'ul0', `${MASQ_NET.uplink}/24`), ...addrUp(outside, 'ul0', `${MASQ_NET.outside}/24`),
    ...bridge(node, 'br0', `${MASQ_NET.gateway}/24`, true),
    ...podOnBridge(node, 'br0', 'veth0', pod, `${MASQ_NET.pod}/24`, MASQ_NET.gateway),
    inNs(node, 'iptables-restore', file),
  ];
  return {
    target: 'bridge-masq', namespaces: [pod, node, outside, u.sw], commands, mtu: POD_MTU,
    client: { ns: pod, ip: MASQ_NET.pod }, server: { ns: outside, ip: MASQ_NET.outside },
    masquerade: { ns: node, file, rules: dockerMasqueradeRules(MASQ_NET.pods, 'br0') },
  };
}

export const planFlannelVxlan = () => planTwoNodes('flannel-vxlan');
export const planHostGw = () => planTwoNodes('host-gw');

/** The plan of a netns-built target; `ruleFile(n)` names the iptables-restore file of N rules (bridge-masq's: n = -1). */
export function planFor(t: TargetInfo, rules: readonly number[], ruleFile: (n: number) => string): NetnsPlan {
  switch (t.name) {
    case 'veth': return planVeth();
    case 'routed': return planRouted();
    case 'bridge': return planBridge();
    case 'flannel-vxlan': return planFlannelVxlan();
    case 'host-gw': return planHostGw();
    case 'bridge-masq': return planBridgeMasq(ruleFile(-1));
    default:
      if (t.rules !== undefined) return planBridge({ n: t.rules, index: rules.indexOf(t.rules), file: ruleFile(t.rules) });
      throw new Error(`${t.name} is not built from network namespaces`);
  }
}

// ---------------------------------------------------------------------------------
// iptables

/** The k-th address (k from 0) of 100.64.0.0/10, which no target uses: rules that never match. */
export function unusedAddress(k: number): string {
  if (k < 0 || k >= 1 << 22) throw new RangeError(`no unused address #${k}`);
  const x = (100 << 24) + (64 << 16) + k;
  return [x >>> 24, (x >>> 16) & 255, (x >>> 8) & 255, x & 255].join('.');
}

/**
 * An `iptables-restore` file: FORWARD policy DROP, N-1 rules that never match (sources in
 * 100.64.0.0/10, TCP), then the one ACCEPT for `accept` (both directions), last. N = 0:
 * an empty FORWARD chain with policy ACCEPT (netfilter and br_netfilter on, no rule).
 */
export function iptablesRules(n: number, accept: string): string {
  const lines = ['*filter', ':INPUT ACCEPT [0:0]', `:FORWARD ${n > 0 ? 'DROP' : 'ACCEPT'} [0:0]`, ':OUTPUT ACCEPT [0:0]'];
  for (let k = 0; k < n - 1; k++) lines.push(`-A FORWARD -s ${unusedAddress(k)}/32 -p tcp -j DROP`);
  if (n > 0) lines.push(`-A FORWARD -s ${accept} -d ${accept} -j ACCEPT`);
  lines.push('COMMIT', '');
  return lines.join('\n');
}

/**
 * The packet and byte counters of `iptables -L FORWARD N -v -x -n` (one rule line:
 * "pkts bytes target prot opt in out source destination").
 */
export function parseRuleCounters(text: string): { packets: number; bytes: number; target: string } {
  const line = text.split('\n').map((l) => l.trim()).filter((l) => /^\d+\s+\d+\s+\S+/.test(l)).at(-1);
  if (!line) throw new Error(`no rule line in iptables output: ${text.trim().slice(0, 200) || '(empty)'}`);
  const [pkts, bytes, target] = line.split(/\s+/);
  return { packets: Number(pkts), bytes: Number(bytes), target: target! };
}

// ---------------------------------------------------------------------------------
// Addresses

function toInt(ip: string): number {
  const p = ip.split('.').map(Number);
  if (p.length !== 4 || p.some((x) => !Number.isInteger(x) || x < 0 || x > 255)) throw new Error(`not an IPv4 address: ${ip}`);
  return ((p[0]! << 24) | (p[1]! << 16) | (p[2]! << 8) | p[3]!) >>> 0;
}

/** Whether two IPv4 CIDRs (a bare address is a /32) overlap. */
export function cidrsOverlap(a: string, b: string): boolean {
  const parse = (c: string) => {
    const [ip, len] = c.split('/');
    const l = len === undefined ? 32 : Number(len);
    const mask = l === 0 ? 0 : (~0 << (32 - l)) >>> 0;
    return { net: (toInt(ip!) & mask) >>> 0, mask };
  };
  const x = parse(a);
  const y = parse(b);
  const m = (x.mask & y.mask) >>> 0;
  return ((x.net & m) >>> 0) === ((y.net & m) >>> 0);
}
