/**
 * The reference evaluator: decides, straight from the NetworkPolicy API's definition,
 * whether a new connection is allowed. It is what the BPF datapath's policy decisions are
 * compared against in differential tests, so it is written to be obviously correct, not
 * fast: every policy and every rule is looked at for every connection. Pure.
 *
 * What it models: the policy decision for the first packet of a connection. What it does
 * not: replies of allowed connections and traffic between a node and its own pods, which
 * the dataplane always allows (see docs/policy-semantics.md).
 *
 * Semantics (networking.k8s.io/v1):
 * - A pod is isolated for a direction when at least one policy of its namespace with that
 *   direction in `policyTypes` selects it. A pod that is not isolated allows everything in
 *   that direction; an address that is not a pod's is never subject to policy.
 * - An isolated pod allows what at least one rule of at least one selecting policy allows
 *   (the union; policies never deny).
 * - A rule allows a connection when one of its peers matches the remote end (no peers, or
 *   an empty list: every remote end, pods and addresses) and one of its ports matches (no
 *   ports, or an empty list: every port of every protocol).
 * - Peers: `podSelector` alone: pods of the policy's namespace; `namespaceSelector` alone:
 *   every pod of the matching namespaces; both: matching pods of matching namespaces;
 *   `ipBlock`: any address in `cidr` and in no `except`, pods' addresses included (as the
 *   upstream conformance suite expects; docs/policy-semantics.md, "ipBlock and pod IPs").
 * - Ports: the protocol must match; no `port`: every port; a number: that port, or the
 *   inclusive range up to `endPort`; a name: the destination pod declares a port of that
 *   name, protocol and number (for ingress the destination is the policy's own pod; for
 *   egress it is the remote pod; a named port never matches an address).
 * - The connection is allowed when the source's egress and the destination's ingress both are.
 */
import { checkPorts, type PodPort } from '../endpoint/ports.js';
import { cidrContains, formatCidr, parseIPv4, type Cidr, type Ipv4 } from '../util/ipv4.js';
import { formatLabels, labelKeyProblem, labelValueProblem, type Labels } from '../util/labels.js';
import { dnsLabelProblem, dnsSubdomainProblem } from './names.js';
import { PolicyParseError, policyCidr, validatePolicies } from './parse.js';
import { formatSelector, matchesSelector } from './selector.js';
import {
  PROTOCOLS,
  policyKey,
  type IPBlock,
  type NetworkPolicy,
  type NetworkPolicyPeer,
  type NetworkPolicyPort,
  type PolicyType,
  type Protocol,
} from './types.js';

/** Set on every namespace, to its name, as the API server does. */
export const NAMESPACE_NAME_LABEL = 'kubernetes.io/metadata.name';

export interface PodRef {
  namespace: string;
  name: string;
}

export interface Pod {
  namespace: string;
  name: string;
  labels?: Labels;
  /** The pod's IPv4 address. */
  ip: string;
  /** Declared container ports, which named ports in policies resolve against. */
  ports?: PodPort[];
}

export interface ClusterInput {
  /**
   * Policies as `parsePolicies` returns them. Objects built by hand are validated and
   * normalised the same way (defaults filled in); an invalid one is an error.
   */
  policies: readonly NetworkPolicy[];
  /**
   * Namespace name → its labels. `kubernetes.io/metadata.name: <name>` is added to each.
   * Namespaces that only appear in pods or policies exist with that label alone.
   */
  namespaces?: Readonly<Record<string, Labels>>;
  pods: readonly Pod[];
}

/** A pod, or an IPv4 address that is no pod's (a client or server outside the cluster). */
export type Endpoint = PodRef | string;

export interface Connection {
  src: Endpoint;
  dst: Endpoint;
  protocol: Protocol;
  /** Destination port. */
  port: number;
}

/** A rule that allowed the connection: `policy` is "namespace/name", `rule` the index in spec.ingress or spec.egress. */
export interface RuleRef {
  policy: string;
  rule: number;
}

export interface SideVerdict {
  /** "namespace/name" of the pod whose policy this side is, or undefined when this end is an address. */
  pod?: string;
  /** Some policy with this direction in policyTypes selects the pod. */
  isolated: boolean;
  /** Those policies ("namespace/name"), in input order. */
  isolatedBy: string[];
  allowed: boolean;
  /** Every rule that allows the connection (empty when the side is not isolated). */
  allowedBy: RuleRef[];
}

export interface Verdict {
  allowed: boolean;
  /** The source's egress (not subject to policy when the source is an address). */
  egress: SideVerdict;
  /** The destination's ingress (not subject to policy when the destination is an address). */
  ingress: SideVerdict;
}

interface ResolvedPod {
  kind: 'pod';
  pod: Pod;
  key: string;
  ip: Ipv4;
  labels: Labels;
  ports: PodPort[];
}

interface ResolvedAddress {
  kind: 'address';
  text: string;
  ip: Ipv4;
}

type Resolved = ResolvedPod | ResolvedAddress;

/** A validated, indexed view of policies, namespaces and pods. Build it once, evaluate many connections. */
export class Cluster {
  readonly policies: readonly NetworkPolicy[];
  private readonly namespaceLabels = new Map<string, Labels>();
  private readonly podsByKey = new Map<string, ResolvedPod>();
  private readonly podsByIp = new Map<Ipv4, ResolvedPod>();
  private readonly cidrs = new Map<string, Cidr>();

  constructor(input: ClusterInput) {
    const problems: string[] = [];
    const addNamespace = (name: string, labels: Labels | undefined, what: string): void => {
      if (this.namespaceLabels.has(name) && labels === undefined) return;
      const nameProblem = dnsLabelProblem(name);
      if (nameProblem !== undefined) problems.push(`${what}: ${nameProblem}`);
      for (const [k, v] of Object.entries(labels ?? {})) {
        const p = labelKeyProblem(k) ?? (typeof v === 'string' ? labelValueProblem(k, v) : `label '${k}': the value must be a string`);
        if (p !== undefined) problems.push(`namespace ${name}: ${p}`);
      }
      const given = labels?.[NAMESPACE_NAME_LABEL];
      if (given !== undefined && given !== name) {
        problems.push(`namespace ${name}: label ${NAMESPACE_NAME_LABEL} is '${given}', but it is always the namespace's name`);
      }
      this.namespaceLabels.set(name, { ...labels, [NAMESPACE_NAME_LABEL]: name });
    };
    for (const [name, labels] of Object.entries(input.namespaces ?? {})) addNamespace(name, labels, 'namespace');

    for (const pod of input.pods) {
      const key = `${pod.namespace}/${pod.name}`;
      if (!this.namespaceLabels.has(pod.namespace)) addNamespace(pod.namespace, undefined, `pod ${key}: namespace`);
      const nameProblem = dnsSubdomainProblem(pod.name);
      if (nameProblem !== undefined) problems.push(`pod ${key}: name ${nameProblem}`);
      if (this.podsByKey.has(key)) problems.push(`pod ${key} is given twice`);
      for (const [k, v] of Object.entries(pod.labels ?? {})) {
        const p = labelKeyProblem(k) ?? labelValueProblem(k, v);
        if (p !== undefined) problems.push(`pod ${key}: ${p}`);
      }
      let ip: Ipv4;
      try {
        ip = parseIPv4(pod.ip);
      } catch (e) {
        problems.push(`pod ${key}: ${(e as Error).message}`);
        continue;
      }
      const other = this.podsByIp.get(ip);
      if (other !== undefined) problems.push(`pod ${key}: IP ${pod.ip} is also pod ${other.key}'s`);
      let ports: PodPort[] = [];
      try {
        ports = checkPorts(pod.ports);
      } catch (e) {
        problems.push(`pod ${key}: ${(e as Error).message}`);
      }
      const resolved: ResolvedPod = { kind: 'pod', pod, key, ip, labels: { ...pod.labels }, ports };
      this.podsByKey.set(key, resolved);
      this.podsByIp.set(ip, resolved);
    }

    // Hand-built policies get the same checks and defaults as parsed ones.
    let policies: NetworkPolicy[] = [];
    try {
      policies = validatePolicies(input.policies, 'policies');
    } catch (e) {
      if (!(e instanceof PolicyParseError)) throw e;
      problems.push(...e.errors.map((p) => `policy ${p.document}${p.policy === undefined ? '' : ` (${p.policy})`}: ${p.path === '' ? '' : `${p.path}: `}${p.message}`));
    }
    for (const policy of policies) {
      if (!this.namespaceLabels.has(policy.metadata.namespace)) addNamespace(policy.metadata.namespace, undefined, `policy ${policyKey(policy)}: namespace`);
      const rules = [...policy.spec.ingress.map((r) => r.from), ...policy.spec.egress.map((r) => r.to)];
      for (const peer of rules.flatMap((peers) => peers ?? [])) {
        if (peer.ipBlock === undefined) continue;
        for (const text of [peer.ipBlock.cidr, ...(peer.ipBlock.except ?? [])]) {
          const r = policyCidr(text);
          if ('problem' in r) problems.push(`policy ${policyKey(policy)}: ${r.problem}`);
          else this.cidrs.set(text, r.cidr);
        }
      }
    }
    if (problems.length > 0) throw new Error(`invalid cluster for policy evaluation:\n  ${problems.join('\n  ')}`);
    this.policies = policies;
  }

  /** The namespace's labels (with kubernetes.io/metadata.name). */
  namespace(name: string): Labels {
    return this.namespaceLabels.get(name) ?? { [NAMESPACE_NAME_LABEL]: name };
  }

  /** @internal */
  resolve(e: Endpoint, what: string): Resolved {
    if (typeof e === 'string') {
      let ip: Ipv4;
      try {
        ip = parseIPv4(e);
      } catch {
        throw new Error(`${what}: '${e}' is not an IPv4 address (a pod is given as {namespace, name})`);
      }
      const pod = this.podsByIp.get(ip);
      if (pod !== undefined) throw new Error(`${what}: ${e} is the IP of pod ${pod.key}: give the pod as {namespace, name}`);
      return { kind: 'address', text: e, ip };
    }
    const pod = this.podsByKey.get(`${e.namespace}/${e.name}`);
    if (pod === undefined) throw new Error(`${what}: there is no pod ${e.namespace}/${e.name}`);
    return pod;
  }

  /** @internal */
  cidr(text: string): Cidr {
    const c = this.cidrs.get(text);
    if (c !== undefined) return c;
    const r = policyCidr(text);
    if ('problem' in r) throw new Error(r.problem);
    this.cidrs.set(text, r.cidr);
    return r.cidr;
  }
}

export function createCluster(input: ClusterInput): Cluster {
  return new Cluster(input);
}

function asCluster(c: Cluster | ClusterInput): Cluster {
  return c instanceof Cluster ? c : new Cluster(c);
}

// ---- the decision, with the reasons kept for explain() ----

interface Check {
  index: number;
  matched: boolean;
  why: string;
}

interface RuleTrace {
  index: number;
  /** undefined: the rule has no peers (every remote end matches). */
  peers?: Check[];
  /** undefined: the rule has no ports (every port matches). */
  ports?: Check[];
  allows: boolean;
}

interface PolicyTrace {
  policy: string;
  rules: RuleTrace[];
}

interface SideTrace {
  direction: PolicyType;
  subject?: ResolvedPod;
  remote: Resolved;
  /** Policies of the subject's namespace with this direction that do not select it, with the reason. */
  notSelecting: string[];
  selecting: PolicyTrace[];
  verdict: SideVerdict;
}

function describeEnd(r: Resolved): string {
  return r.kind === 'pod' ? `pod ${r.key} (${r.pod.ip})` : `address ${r.text}`;
}

function describeIpBlock(b: IPBlock): string {
  return `ipBlock ${b.cidr}${b.except !== undefined && b.except.length > 0 ? ` except ${b.except.join(', ')}` : ''}`;
}

function matchPeer(cluster: Cluster, policy: NetworkPolicy, peer: NetworkPolicyPeer, remote: Resolved): { matched: boolean; why: string } {
  const policyNs = policy.metadata.namespace;
  if (peer.ipBlock !== undefined) {
    const block = peer.ipBlock;
    const ipText = remote.kind === 'pod' ? `${remote.pod.ip} (pod ${remote.key})` : remote.text;
    const desc = describeIpBlock(block);
    const cidr = cluster.cidr(block.cidr);
    if (!cidrContains(cidr, remote.ip)) return { matched: false, why: `${desc}: ${ipText} is outside ${formatCidr(cidr)}` };
    const except = (block.except ?? []).find((e) => cidrContains(cluster.cidr(e), remote.ip));
    if (except !== undefined) return { matched: false, why: `${desc}: ${ipText} is in except ${except}` };
    return { matched: true, why: `${desc}: ${ipText} is inside` };
  }
  const parts: string[] = [];
  if (peer.namespaceSelector !== undefined) parts.push(`namespaceSelector ${formatSelector(peer.namespaceSelector)}`);
  if (peer.podSelector !== undefined) parts.push(`podSelector ${formatSelector(peer.podSelector)}`);
  if (peer.namespaceSelector === undefined) parts.push(`(namespace ${policyNs})`);
  const desc = parts.join(' ');
  if (remote.kind === 'address') return { matched: false, why: `${desc}: selects pods only, and ${remote.text} is no pod's address` };
  if (peer.namespaceSelector === undefined) {
    if (remote.pod.namespace !== policyNs) return { matched: false, why: `${desc}: pod ${remote.key} is in another namespace` };
  } else if (!matchesSelector(peer.namespaceSelector, cluster.namespace(remote.pod.namespace))) {
    return { matched: false, why: `${desc}: namespace ${remote.pod.namespace} {${formatLabels(cluster.namespace(remote.pod.namespace))}} does not match` };
  }
  if (peer.podSelector !== undefined && !matchesSelector(peer.podSelector, remote.labels)) {
    return { matched: false, why: `${desc}: pod ${remote.key} {${formatLabels(remote.labels)}} does not match` };
  }
  return { matched: true, why: `${desc}: matches pod ${remote.key}` };
}

/** `dstPod`: the pod named ports resolve against, undefined when the destination is an address. */
function matchPort(p: NetworkPolicyPort, protocol: Protocol, port: number, dstPod: ResolvedPod | undefined): { matched: boolean; why: string } {
  const spec = p.port === undefined ? `${p.protocol} (every port)` : p.endPort !== undefined ? `${p.protocol}/${p.port}-${p.endPort}` : `${p.protocol}/${p.port}`;
  if (p.protocol !== protocol) return { matched: false, why: `${spec}: the connection is ${protocol}` };
  if (p.port === undefined) return { matched: true, why: `${spec}: matches` };
  if (typeof p.port === 'number') {
    const end = p.endPort ?? p.port;
    const matched = port >= p.port && port <= end;
    const miss = p.endPort !== undefined ? `port ${port} is not in the range` : `the connection's port is ${port}`;
    return { matched, why: `${spec}: ${matched ? 'matches' : miss}` };
  }
  const name = p.port;
  if (dstPod === undefined) return { matched: false, why: `${spec}: a named port matches only a pod's declared port, and the destination is an address` };
  const declared = dstPod.ports.filter((d) => d.name === name);
  if (declared.length === 0) return { matched: false, why: `${spec}: pod ${dstPod.key} declares no port named '${name}'` };
  if (declared.some((d) => d.protocol === protocol && d.port === port)) return { matched: true, why: `${spec}: pod ${dstPod.key} declares '${name}' as ${protocol}/${port}` };
  return { matched: false, why: `${spec}: pod ${dstPod.key} declares '${name}' as ${declared.map((d) => `${d.protocol}/${d.port}`).join(', ')}` };
}

function evaluateSide(cluster: Cluster, direction: PolicyType, subjectEnd: Resolved, remote: Resolved, conn: Connection, dstPod: ResolvedPod | undefined): SideTrace {
  if (subjectEnd.kind === 'address') {
    return { direction, remote, notSelecting: [], selecting: [], verdict: { isolated: false, isolatedBy: [], allowed: true, allowedBy: [] } };
  }
  const subject = subjectEnd;
  const notSelecting: string[] = [];
  const selecting: PolicyTrace[] = [];
  for (const policy of cluster.policies) {
    if (policy.metadata.namespace !== subject.pod.namespace || !policy.spec.policyTypes.includes(direction)) continue;
    if (!matchesSelector(policy.spec.podSelector, subject.labels)) {
      notSelecting.push(`${policyKey(policy)} (podSelector ${formatSelector(policy.spec.podSelector)})`);
      continue;
    }
    const rules = direction === 'Ingress' ? policy.spec.ingress.map((r) => ({ peers: r.from, ports: r.ports })) : policy.spec.egress.map((r) => ({ peers: r.to, ports: r.ports }));
    const traces = rules.map((rule, index): RuleTrace => {
      const peers = rule.peers === undefined || rule.peers.length === 0 ? undefined : rule.peers.map((peer, i): Check => ({ index: i, ...matchPeer(cluster, policy, peer, remote) }));
      const ports = rule.ports === undefined || rule.ports.length === 0 ? undefined : rule.ports.map((p, i): Check => ({ index: i, ...matchPort(p, conn.protocol, conn.port, dstPod) }));
      const peerOk = peers === undefined || peers.some((c) => c.matched);
      const portOk = ports === undefined || ports.some((c) => c.matched);
      return { index, ...(peers === undefined ? {} : { peers }), ...(ports === undefined ? {} : { ports }), allows: peerOk && portOk };
    });
    selecting.push({ policy: policyKey(policy), rules: traces });
  }
  const allowedBy = selecting.flatMap((p) => p.rules.filter((r) => r.allows).map((r) => ({ policy: p.policy, rule: r.index })));
  const isolated = selecting.length > 0;
  return {
    direction,
    subject,
    remote,
    notSelecting,
    selecting,
    verdict: { pod: subject.key, isolated, isolatedBy: selecting.map((p) => p.policy), allowed: !isolated || allowedBy.length > 0, allowedBy },
  };
}

function checkConnection(conn: Connection): void {
  if (!(PROTOCOLS as readonly string[]).includes(conn.protocol)) throw new Error(`connection protocol must be TCP, UDP or SCTP, got ${JSON.stringify(conn.protocol)}`);
  if (!Number.isInteger(conn.port) || conn.port < 1 || conn.port > 65535) throw new Error(`connection port must be from 1 to 65535, got ${JSON.stringify(conn.port)}`);
}

function trace(c: Cluster | ClusterInput, conn: Connection): { src: Resolved; dst: Resolved; egress: SideTrace; ingress: SideTrace } {
  const cluster = asCluster(c);
  checkConnection(conn);
  const src = cluster.resolve(conn.src, 'connection source');
  const dst = cluster.resolve(conn.dst, 'connection destination');
  const dstPod = dst.kind === 'pod' ? dst : undefined;
  return { src, dst, egress: evaluateSide(cluster, 'Egress', src, dst, conn, dstPod), ingress: evaluateSide(cluster, 'Ingress', dst, src, conn, dstPod) };
}

/** Whether a new connection is allowed, and by what, per side. Throws on invalid input. */
export function evaluate(cluster: Cluster | ClusterInput, conn: Connection): Verdict {
  const t = trace(cluster, conn);
  return { allowed: t.egress.verdict.allowed && t.ingress.verdict.allowed, egress: t.egress.verdict, ingress: t.ingress.verdict };
}

function explainSide(s: SideTrace): string[] {
  const dir = s.direction === 'Ingress' ? 'ingress' : 'egress';
  const role = s.direction === 'Ingress' ? 'destination' : 'source';
  if (s.subject === undefined) return [`${dir}: the ${role} is an address, not subject to policy: allowed`];
  const lines: string[] = [];
  const head = `${dir} of ${role} pod ${s.subject.key}`;
  for (const n of s.notSelecting) lines.push(`  ${n} has ${s.direction} but does not select it`);
  if (!s.verdict.isolated) {
    return [`${head}: not isolated (no policy with ${s.direction} in policyTypes selects it): allowed`, ...lines];
  }
  lines.unshift(`${head}: isolated by ${s.verdict.isolatedBy.join(', ')}`);
  const peerField = s.direction === 'Ingress' ? 'from' : 'to';
  for (const p of s.selecting) {
    if (p.rules.length === 0) lines.push(`  ${p.policy}: no ${dir} rules (allows nothing)`);
    for (const r of p.rules) {
      lines.push(`  ${p.policy} ${dir}[${r.index}]: ${r.allows ? 'allows' : 'does not allow'}`);
      if (r.peers === undefined) lines.push(`    no ${peerField}: every ${role === 'source' ? 'destination' : 'source'}`);
      else for (const c of r.peers) lines.push(`    ${peerField}[${c.index}] ${c.why}`);
      if (r.ports === undefined) lines.push('    no ports: every port');
      else for (const c of r.ports) lines.push(`    ports[${c.index}] ${c.why}`);
    }
  }
  lines.push(
    s.verdict.allowed
      ? `  → ${dir} allowed by ${s.verdict.allowedBy.map((r) => `${r.policy} ${dir}[${r.rule}]`).join(', ')}`
      : `  → ${dir} denied: no rule of ${s.verdict.isolatedBy.join(', ')} allows it`,
  );
  return lines;
}

/** Human-readable lines: the connection, each side's isolation, every rule looked at and why it matched or not, the verdict. */
export function explain(cluster: Cluster | ClusterInput, conn: Connection): string[] {
  const t = trace(cluster, conn);
  const allowed = t.egress.verdict.allowed && t.ingress.verdict.allowed;
  const denied = [t.egress.verdict.allowed ? undefined : 'egress', t.ingress.verdict.allowed ? undefined : 'ingress'].filter((x) => x !== undefined);
  return [
    `connection ${describeEnd(t.src)} → ${describeEnd(t.dst)} ${conn.protocol}/${conn.port}`,
    ...explainSide(t.egress),
    ...explainSide(t.ingress),
    allowed ? 'verdict: allowed' : `verdict: denied by ${denied.join(' and ')}`,
  ];
}
