/**
 * The lab's topology: which nodes (on which underlay subnets), which pod namespaces and
 * which pods, which hosts outside the cluster, the cross-node mode and the store. Read from YAML or JSON, validated
 * strictly (unknown keys, duplicates, dangling references, bad labels and ports are
 * errors naming the field and, for files, the line), merged with the command line's
 * flags, and completed with defaults (2 nodes, 2 pods per node). Pure: the caller reads
 * the file.
 */
import { LineCounter, isMap, isSeq, parseDocument, type Document, type Node as YamlNode } from 'yaml';
import { ConfigError, MODES, resolveConfig, type Mode } from '../config/config.js';
import { checkPorts, type PodPort } from '../endpoint/ports.js';
import { labelKeyProblem, labelValueProblem, type Labels } from '../util/labels.js';
import { cidrSize, formatCidr, parseCidr } from '../util/ipv4.js';

export const STORES = ['file', 'etcd'] as const;
export type StoreKind = (typeof STORES)[number];

export interface LabNode {
  name: string;
  /** The underlay subnet (one L2 segment) the node's uplink is on. */
  subnet: string;
}

export interface LabNamespace {
  name: string;
  labels: Labels;
}

export interface LabPod {
  name: string;
  namespace: string;
  node: string;
  labels: Labels;
  ports: PodPort[];
}

/** A host outside the cluster: a namespace on an underlay subnet, with no route to any pod block. */
export interface LabExternal {
  name: string;
  /** Its underlay subnet: one of the nodes', or one of its own (then behind the lab's router). */
  subnet: string;
}

export interface Topology {
  /** The lab's name, when the file gives one (the --name flag wins). */
  name?: string;
  mode: Mode;
  store: StoreKind;
  clusterCIDR: string;
  blockSize: number;
  /** Where the underlay subnets come from: one /24 each, in order. */
  underlay: string;
  nodes: LabNode[];
  /** Every pod namespace, `default` included. */
  namespaces: LabNamespace[];
  pods: LabPod[];
  /** Hosts outside the cluster (default: one, `ext`, on the first node's subnet). */
  external: LabExternal[];
}

/** What the command line can override. */
export interface TopologyFlags {
  name?: string;
  nodes?: number;
  podsPerNode?: number;
  mode?: string;
  store?: string;
}

export const DEFAULT_NODES = 2;
export const DEFAULT_PODS_PER_NODE = 2;
export const DEFAULT_SUBNET = 's1';
export const DEFAULT_UNDERLAY = '198.18.0.0/15';
export const DEFAULT_NAMESPACE = 'default';
export const MAX_NODES = 64;
export const MAX_PODS_PER_NODE = 100;
/** Node addresses are .1 to .200 of their subnet's /24 (.250 is etcd's, .254 the router's). */
export const MAX_NODES_PER_SUBNET = 200;
/** Outside hosts are .201 to .240 of their subnet's /24. */
export const MAX_EXTERNAL_PER_SUBNET = 40;
export const DEFAULT_EXTERNAL = 'ext';
/** Names the lab uses for its own namespaces (`<LAB>-underlay`, `<LAB>-router`). */
export const RESERVED_NODE_NAMES = ['underlay', 'router'];

const TOP_KEYS = ['name', 'mode', 'store', 'clusterCIDR', 'blockSize', 'underlay', 'nodes', 'namespaces', 'pods', 'external'] as const;
const EXTERNAL_KEYS = ['name', 'subnet'] as const;
const NODE_KEYS = ['name', 'subnet'] as const;
const NAMESPACE_KEYS = ['name', 'labels'] as const;
const POD_KEYS = ['name', 'namespace', 'node', 'labels', 'ports'] as const;

/** A lab name: a prefix of every network namespace and the pin directory. */
export const LAB_NAME = /^[a-z][a-z0-9-]{0,22}[a-z0-9]$|^[a-z]$/;
/** Node, subnet, namespace and pod names: DNS labels (RFC 1123), as Kubernetes names them. */
const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

export type Path = (string | number)[];

export function formatPath(path: Path): string {
  return path.reduce<string>((s, seg) => (typeof seg === 'number' ? `${s}[${seg}]` : s ? `${s}.${seg}` : seg), '');
}

export class TopologyError extends Error {
  constructor(readonly source: string, readonly field: string, readonly problem: string, readonly line?: number) {
    super(`${source}${line ? `:${line}` : ''}: ${field}: ${problem}`);
    this.name = 'TopologyError';
  }
}

/** A parsed topology file: its raw value and a way to find the line of a field. */
export interface TopologySource {
  source: string;
  raw: unknown;
  lineOf(path: Path): number | undefined;
}

/** Parses YAML or JSON text (JSON is checked as JSON when `json` is set or the name ends in .json). */
export function parseTopologyText(text: string, source: string, json = /\.json$/i.test(source)): TopologySource {
  if (json) {
    try {
      JSON.parse(text);
    } catch (e) {
      throw new TopologyError(source, '(file)', `not valid JSON: ${(e as Error).message}`);
    }
  }
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const err = doc.errors[0];
  if (err) {
    const line = err.linePos?.[0]?.line ?? lineCounter.linePos(err.pos[0]).line;
    throw new TopologyError(source, '(file)', `not valid ${json ? 'JSON' : 'YAML'}: ${err.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '')}`, line);
  }
  return { source, raw: doc.toJS(), lineOf: (path) => lineOf(doc, lineCounter, path) };
}

function lineOf(doc: Document, lc: LineCounter, path: Path): number | undefined {
  let node: unknown = doc.contents;
  let line: number | undefined = (node as YamlNode | null)?.range ? lc.linePos((node as YamlNode).range![0]).line : undefined;
  for (const seg of path) {
    if (isMap(node)) {
      const pair = node.items.find((p) => (p.key as { value?: unknown } | null)?.value === seg);
      if (!pair) break;
      const key = pair.key as YamlNode;
      if (key.range) line = lc.linePos(key.range[0]).line;
      node = pair.value;
    } else if (isSeq(node) && typeof seg === 'number') {
      const item = node.items[seg] as YamlNode | undefined;
      if (!item) break;
      if (item.range) line = lc.linePos(item.range[0]).line;
      node = item;
    } else break;
  }
  return line;
}

/** Checks a raw topology (from a file, or undefined) and the flags, and fills in the defaults. */
export function buildTopology(file: TopologySource | undefined, flags: TopologyFlags = {}): Topology {
  const source = file?.source ?? 'topology';
  const fail = (path: Path, problem: string): never => {
    throw new TopologyError(source, formatPath(path), problem, file?.lineOf(path));
  };
  const flagFail = (flag: string, problem: string): never => {
    throw new TopologyError('command line', flag, problem);
  };
  const raw = file?.raw ?? {};
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new TopologyError(source, '(file)', 'expected a mapping with the keys mode, store, nodes, namespaces, pods');
  }
  const top = raw as Record<string, unknown>;
  checkKeys(top, [], TOP_KEYS, fail);

  // Scalars.
  let name: string | undefined;
  if (top.name !== undefined) name = checkLabName(str(top.name, ['name'], fail), (p) => fail(['name'], p));
  if (flags.name !== undefined) name = checkLabName(flags.name, (p) => flagFail('--name', p));
  const mode = oneOf(flags.mode ?? top.mode ?? 'vxlan', MODES, flags.mode !== undefined ? () => flagFail('--mode', `expected one of ${MODES.join(', ')}, got ${JSON.stringify(flags.mode)}`) : (p) => fail(['mode'], p));
  const store = oneOf(flags.store ?? top.store ?? 'file', STORES, flags.store !== undefined ? () => flagFail('--store', `expected one of ${STORES.join(', ')}, got ${JSON.stringify(flags.store)}`) : (p) => fail(['store'], p));
  const clusterCIDR = top.clusterCIDR === undefined ? '10.244.0.0/16' : str(top.clusterCIDR, ['clusterCIDR'], fail);
  let blockSize = 24;
  try {
    blockSize = resolveConfig({ nodeName: 'lab', clusterCIDR, ...(top.blockSize !== undefined ? { blockSize: top.blockSize } : {}) }, {}).blockSize;
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    const key = /: (clusterCIDR|blockSize): /.exec(e.message)?.[1] ?? 'clusterCIDR';
    fail([key], e.message.replace(/^.*?: (clusterCIDR|blockSize): /, ''));
  }
  const underlay = top.underlay === undefined ? DEFAULT_UNDERLAY : str(top.underlay, ['underlay'], fail);
  let underlayCidr;
  try {
    underlayCidr = parseCidr(underlay);
  } catch (e) {
    return fail(['underlay'], (e as Error).message);
  }
  if (underlayCidr.prefix > 24) fail(['underlay'], `${underlay} is smaller than a /24 (every subnet takes one /24 of it)`);

  // Nodes.
  let nodes: LabNode[];
  if (flags.nodes !== undefined) {
    if (!Number.isInteger(flags.nodes) || flags.nodes < 1 || flags.nodes > MAX_NODES) flagFail('--nodes', `expected an integer from 1 to ${MAX_NODES}, got ${flags.nodes}`);
    nodes = generatedNodes(flags.nodes, mode);
  } else if (top.nodes === undefined) {
    nodes = generatedNodes(DEFAULT_NODES, mode);
  } else {
    const list = seq(top.nodes, ['nodes'], fail);
    if (list.length === 0) fail(['nodes'], 'a lab needs at least one node');
    if (list.length > MAX_NODES) fail(['nodes'], `at most ${MAX_NODES} nodes, got ${list.length}`);
    nodes = list.map((v, i) => {
      const at: Path = ['nodes', i];
      const o = map(v, at, fail);
      checkKeys(o, at, NODE_KEYS, fail);
      const n = dnsName(o.name, [...at, 'name'], fail, 'node');
      if (RESERVED_NODE_NAMES.includes(n)) fail([...at, 'name'], `'${n}' is reserved for the lab's own namespaces (${RESERVED_NODE_NAMES.join(', ')})`);
      const subnet = o.subnet === undefined ? DEFAULT_SUBNET : dnsName(o.subnet, [...at, 'subnet'], fail, 'subnet');
      return { name: n, subnet };
    });
    firstDuplicate(nodes.map((n) => n.name), (i, n) => fail(['nodes', i, 'name'], `node '${n}' is declared twice`));
  }
  // Hosts outside the cluster.
  let external: LabExternal[];
  if (top.external === undefined) {
    external = [{ name: DEFAULT_EXTERNAL, subnet: nodes[0]!.subnet }];
  } else {
    external = seq(top.external, ['external'], fail).map((v, i) => {
      const at: Path = ['external', i];
      const o = map(v, at, fail);
      checkKeys(o, at, EXTERNAL_KEYS, fail);
      const x = dnsName(o.name, [...at, 'name'], fail, 'outside host');
      const subnet = o.subnet === undefined ? nodes[0]!.subnet : dnsName(o.subnet, [...at, 'subnet'], fail, 'subnet');
      return { name: x, subnet };
    });
    firstDuplicate(external.map((x) => x.name), (i, n) => fail(['external', i, 'name'], `outside host '${n}' is declared twice`));
    const perSubnet = new Map<string, number>();
    external.forEach((x, i) => {
      const k = (perSubnet.get(x.subnet) ?? 0) + 1;
      perSubnet.set(x.subnet, k);
      if (k > MAX_EXTERNAL_PER_SUBNET) fail(['external', i], `subnet '${x.subnet}' has more than ${MAX_EXTERNAL_PER_SUBNET} outside hosts`);
    });
  }
  const subnets = [...new Set([...nodes.map((n) => n.subnet), ...external.map((x) => x.subnet)])];
  const available = cidrSize(underlayCidr) / 256;
  if (subnets.length > available) {
    const byNodes = new Set(nodes.map((n) => n.subnet)).size;
    fail(['underlay'], `${formatCidr(underlayCidr)} has room for ${available} /24 subnet(s); the nodes use ${byNodes}${subnets.length > byNodes ? `, the outside hosts ${subnets.length - byNodes} more` : ''}`);
  }
  for (const s of subnets) {
    const on = nodes.filter((n) => n.subnet === s);
    if (on.length > MAX_NODES_PER_SUBNET) fail(['nodes'], `subnet '${s}' has ${on.length} nodes; at most ${MAX_NODES_PER_SUBNET}`);
  }
  if (mode === 'direct' && subnets.length > 1) {
    const i = nodes.findIndex((n) => n.subnet !== nodes[0]!.subnet);
    const problem = `direct routing needs every node on one L2 subnet, but the nodes use ${subnets.join(', ')} (use mode hybrid or vxlan)`;
    if (flags.mode !== undefined && flags.nodes === undefined) flagFail('--mode', problem);
    fail(['nodes', i, 'subnet'], problem);
  }

  // Namespaces.
  const namespaces: LabNamespace[] = [];
  if (top.namespaces !== undefined) {
    seq(top.namespaces, ['namespaces'], fail).forEach((v, i) => {
      const at: Path = ['namespaces', i];
      const o = map(v, at, fail);
      checkKeys(o, at, NAMESPACE_KEYS, fail);
      namespaces.push({ name: dnsName(o.name, [...at, 'name'], fail, 'namespace'), labels: labels(o.labels, [...at, 'labels'], fail) });
    });
    firstDuplicate(namespaces.map((n) => n.name), (i, n) => fail(['namespaces', i, 'name'], `namespace '${n}' is declared twice`));
  }
  if (!namespaces.some((n) => n.name === DEFAULT_NAMESPACE)) namespaces.unshift({ name: DEFAULT_NAMESPACE, labels: {} });

  // Pods.
  let pods: LabPod[];
  if (flags.podsPerNode !== undefined) {
    if (!Number.isInteger(flags.podsPerNode) || flags.podsPerNode < 0 || flags.podsPerNode > MAX_PODS_PER_NODE) {
      flagFail('--pods-per-node', `expected an integer from 0 to ${MAX_PODS_PER_NODE}, got ${flags.podsPerNode}`);
    }
    pods = generatedPods(nodes, flags.podsPerNode);
  } else if (top.pods === undefined) {
    pods = generatedPods(nodes, DEFAULT_PODS_PER_NODE);
  } else {
    const nodeNames = new Set(nodes.map((n) => n.name));
    const nsNames = new Set(namespaces.map((n) => n.name));
    const nodesFrom = flags.nodes !== undefined ? ` (--nodes ${flags.nodes} made them)` : '';
    pods = seq(top.pods, ['pods'], fail).map((v, i) => {
      const at: Path = ['pods', i];
      const o = map(v, at, fail);
      checkKeys(o, at, POD_KEYS, fail);
      const podName = dnsName(o.name, [...at, 'name'], fail, 'pod');
      const namespace = o.namespace === undefined ? DEFAULT_NAMESPACE : dnsName(o.namespace, [...at, 'namespace'], fail, 'namespace');
      if (!nsNames.has(namespace)) fail([...at, 'namespace'], `unknown namespace '${namespace}' (declared: ${[...nsNames].join(', ')})`);
      if (o.node === undefined) fail(at, "missing 'node'");
      const node = str(o.node, [...at, 'node'], fail);
      if (!nodeNames.has(node)) fail([...at, 'node'], `unknown node '${node}' (nodes: ${[...nodeNames].join(', ')}${nodesFrom})`);
      let ports: PodPort[];
      try {
        ports = checkPorts(o.ports);
      } catch (e) {
        const msg = (e as Error).message;
        const m = /^ports(?:\[(\d+)\])?(?:\.(\w+))? (.*)$/.exec(msg);
        if (!m) return fail([...at, 'ports'], msg);
        return fail([...at, 'ports', ...(m[1] !== undefined ? [Number(m[1])] : []), ...(m[2] ? [m[2]] : [])], m[3]!);
      }
      return { name: podName, namespace, node, labels: labels(o.labels, [...at, 'labels'], fail), ports };
    });
    firstDuplicate(pods.map((p) => `${p.namespace}/${p.name}`), (i, n) => fail(['pods', i, 'name'], `pod '${n}' is declared twice`));
  }
  return { ...(name ? { name } : {}), mode, store, clusterCIDR, blockSize, underlay: formatCidr(underlayCidr), nodes, namespaces, pods, external };
}

/** n1…nN; in hybrid mode they alternate between subnets s1 and s2 (so some traffic crosses the router). */
export function generatedNodes(count: number, mode: Mode): LabNode[] {
  return Array.from({ length: count }, (_, i) => ({
    name: `n${i + 1}`,
    subnet: mode === 'hybrid' && count > 1 ? `s${(i % 2) + 1}` : DEFAULT_SUBNET,
  }));
}

/** `<node>-p<k>` in namespace default, labelled app=<name>. */
export function generatedPods(nodes: readonly LabNode[], perNode: number): LabPod[] {
  return nodes.flatMap((n) => Array.from({ length: perNode }, (_, k) => {
    const name = `${n.name}-p${k + 1}`.slice(0, 63).replace(/-+$/, '');
    return { name, namespace: DEFAULT_NAMESPACE, node: n.name, labels: { app: name }, ports: [] };
  }));
}

export function checkLabName(name: string, fail: (problem: string) => never): string {
  if (!LAB_NAME.test(name)) fail(`'${name}' is not a lab name (1-24 lower-case letters, digits and '-', starting with a letter)`);
  return name;
}

type Fail = (path: Path, problem: string) => never;

function checkKeys(o: Record<string, unknown>, at: Path, known: readonly string[], fail: Fail): void {
  for (const k of Object.keys(o)) {
    if (!known.includes(k)) fail([...at, k], `unknown key (known: ${known.join(', ')})`);
  }
}

function str(v: unknown, at: Path, fail: Fail): string {
  if (typeof v !== 'string' || v === '') fail(at, `expected a non-empty string, got ${JSON.stringify(v)}`);
  return v as string;
}

function oneOf<T extends string>(v: unknown, allowed: readonly T[], fail: (problem: string) => never): T {
  if (typeof v !== 'string' || !allowed.includes(v as T)) fail(`expected one of ${allowed.join(', ')}, got ${JSON.stringify(v)}`);
  return v as T;
}

function dnsName(v: unknown, at: Path, fail: Fail, what: string): string {
  if (v === undefined) fail(at.slice(0, -1), `missing '${at[at.length - 1]}'`);
  const s = str(v, at, fail);
  if (!DNS_LABEL.test(s)) fail(at, `'${s}' is not a valid ${what} name (1-63 lower-case letters, digits and '-', starting and ending with a letter or digit)`);
  return s;
}

function seq(v: unknown, at: Path, fail: Fail): unknown[] {
  if (!Array.isArray(v)) fail(at, `expected a list, got ${JSON.stringify(v)}`);
  return v as unknown[];
}

function map(v: unknown, at: Path, fail: Fail): Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) fail(at, `expected a mapping, got ${JSON.stringify(v)}`);
  return v as Record<string, unknown>;
}

function labels(v: unknown, at: Path, fail: Fail): Labels {
  if (v === undefined || v === null) return {};
  const o = map(v, at, fail);
  const out: Labels = {};
  for (const [k, val] of Object.entries(o)) {
    if (typeof val !== 'string') fail([...at, k], `label values are strings: got ${JSON.stringify(val)} (quote it)`);
    const problem = labelKeyProblem(k) ?? labelValueProblem(k, val as string);
    if (problem) fail([...at, k], problem);
    out[k] = val as string;
  }
  return out;
}

function firstDuplicate(names: string[], fail: (index: number, name: string) => never): void {
  const seen = new Set<string>();
  names.forEach((n, i) => {
    if (seen.has(n)) fail(i, n);
    seen.add(n);
  });
}
