/**
 * NetworkPolicy documents (networking.k8s.io/v1) → validated, normalised policies. Pure:
 * the caller reads the text; nothing here does I/O.
 *
 * Input: YAML with one or several documents (`---`), or JSON (JSON is YAML 1.2, so one
 * parser reads both and reports line numbers for both). A document is a NetworkPolicy, a
 * `kind: List` (apiVersion v1, as kubectl prints) or a `NetworkPolicyList` (whose items may
 * leave out apiVersion and kind, as the API server lists them) with `items`.
 *
 * Everything is checked and every problem is collected, then one `PolicyParseError` lists
 * them all, each with the document, the policy (namespace/name when known), the field path
 * and the line. Nothing is returned unless the whole input is valid.
 */
import { isNode, LineCounter, parseAllDocuments, type Document } from 'yaml';
import { labelKeyProblem, labelValueProblem, type Labels } from '../util/labels.js';
import { cidrContains, formatCidr, parseCidr, parseIPv4, type Cidr } from '../util/ipv4.js';
import { dnsLabelProblem, dnsSubdomainProblem, portNameProblem } from './names.js';
import {
  API_VERSION,
  KIND,
  POLICY_TYPES,
  PROTOCOLS,
  SELECTOR_OPERATORS,
  type IPBlock,
  type LabelSelector,
  type LabelSelectorRequirement,
  type NetworkPolicy,
  type NetworkPolicyEgressRule,
  type NetworkPolicyIngressRule,
  type NetworkPolicyPeer,
  type NetworkPolicyPort,
  type PolicyMetadata,
  type PolicyType,
  type Protocol,
  type SelectorOperator,
} from './types.js';

/** One thing wrong with the input. */
export interface PolicyProblem {
  /** The name the caller gave the input (a file name, "stdin", …). */
  source: string;
  /** 1-based position of the YAML document in the input (JSON input is document 1). */
  document: number;
  /** 1-based line of the offending value (or of the nearest enclosing one that exists). */
  line?: number;
  /** "namespace/name" of the policy, when the document names one. */
  policy?: string;
  /** Field path inside the document, e.g. `spec.ingress[0].from[1].ipBlock.except[0]`; '' for the document itself. */
  path: string;
  message: string;
}

/** `source:line: document N (ns/name): path: message`. */
export function formatProblem(p: PolicyProblem): string {
  const where = p.line === undefined ? p.source : `${p.source}:${p.line}`;
  const doc = `document ${p.document}${p.policy === undefined ? '' : ` (${p.policy})`}`;
  return `${where}: ${doc}: ${p.path === '' ? '' : `${p.path}: `}${p.message}`;
}

export class PolicyParseError extends Error {
  readonly errors: readonly PolicyProblem[];
  constructor(source: string, errors: readonly PolicyProblem[]) {
    const n = errors.length;
    super(`${source}: ${n} problem${n === 1 ? '' : 's'} in NetworkPolicy input:\n${errors.map((e) => `  ${formatProblem(e)}`).join('\n')}`);
    this.name = 'PolicyParseError';
    this.errors = errors;
  }
}

type Path = readonly (string | number)[];

/** `spec.ingress[0].from[1]` from ['spec', 'ingress', 0, 'from', 1]. */
export function formatPath(path: Path): string {
  let s = '';
  for (const seg of path) s += typeof seg === 'number' ? `[${seg}]` : s === '' ? seg : `.${seg}`;
  return s;
}

/** Reports problems (and warnings) for one policy (or one list document) of one YAML document. */
interface Ctx {
  report(path: Path, message: string): void;
  /** Something accepted that the user should know about (it changes nothing about validity). */
  warn(path: Path, message: string): void;
}

type Raw = Record<string, unknown>;

function isMapping(v: unknown): v is Raw {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/** Null and absent are the same to the Kubernetes API for optional fields. */
function given(v: unknown): boolean {
  return v !== undefined && v !== null;
}

function describe(v: unknown): string {
  if (v === undefined || v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (isMapping(v)) return 'a mapping';
  if (typeof v === 'string') return `the string ${JSON.stringify(v)}`;
  if (typeof v === 'number') return `the number ${v}`;
  if (typeof v === 'boolean') return `the boolean ${v}`;
  if (v instanceof Uint8Array) return 'binary data';
  return `a ${typeof v}`;
}

/** A mapping whose keys are all in `known` (or `ignored`); reports each unknown key. */
function mapping(ctx: Ctx, path: Path, v: unknown, known: readonly string[], ignored: readonly string[] = []): Raw | undefined {
  if (!isMapping(v)) {
    ctx.report(path, `must be a mapping, got ${describe(v)}`);
    return undefined;
  }
  for (const k of Object.keys(v)) {
    if (!known.includes(k) && !ignored.includes(k)) ctx.report([...path, k], `unknown field (expected ${known.join(', ')})`);
  }
  return v;
}

function list(ctx: Ctx, path: Path, v: unknown): unknown[] | undefined {
  if (!Array.isArray(v)) {
    ctx.report(path, `must be a list, got ${describe(v)}`);
    return undefined;
  }
  return v;
}

function string(ctx: Ctx, path: Path, v: unknown): string | undefined {
  if (typeof v !== 'string') {
    ctx.report(path, `must be a string, got ${describe(v)}`);
    return undefined;
  }
  return v;
}

/** A string that `problem` accepts. */
function checkedString(ctx: Ctx, path: Path, v: unknown, problem: (s: string) => string | undefined): string | undefined {
  const s = string(ctx, path, v);
  if (s === undefined) return undefined;
  const p = problem(s);
  if (p === undefined) return s;
  ctx.report(path, p);
  return undefined;
}

function portNumber(ctx: Ctx, path: Path, v: unknown): number | undefined {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 65535) {
    ctx.report(path, `must be a port number from 1 to 65535, got ${describe(v)}`);
    return undefined;
  }
  return v;
}

/** A map of label keys to label values (metadata.labels, matchLabels). */
function labelMap(ctx: Ctx, path: Path, v: unknown, what: 'label' | 'annotation' = 'label'): Labels | undefined {
  if (!isMapping(v)) {
    ctx.report(path, `must be a mapping of ${what}s, got ${describe(v)}`);
    return undefined;
  }
  const out: Labels = {};
  let ok = true;
  for (const [key, value] of Object.entries(v)) {
    const keyProblem = labelKeyProblem(key);
    if (keyProblem !== undefined) {
      ctx.report(path, what === 'label' ? keyProblem : keyProblem.replace(/^label key/, 'annotation key'));
      ok = false;
    }
    if (typeof value !== 'string') {
      ctx.report(path, `${what} '${key}': the value must be a string, got ${describe(value)}${typeof value === 'number' || typeof value === 'boolean' ? ' (quote it)' : ''}`);
      ok = false;
      continue;
    }
    if (what === 'label') {
      const valueProblem = labelValueProblem(key, value);
      if (valueProblem !== undefined) {
        ctx.report(path, valueProblem);
        ok = false;
      }
    }
    out[key] = value;
  }
  return ok ? out : undefined;
}

function selector(ctx: Ctx, path: Path, v: unknown): LabelSelector | undefined {
  const m = mapping(ctx, path, v, ['matchLabels', 'matchExpressions']);
  if (m === undefined) return undefined;
  const out: LabelSelector = {};
  let ok = true;
  if (given(m.matchLabels)) {
    const labels = labelMap(ctx, [...path, 'matchLabels'], m.matchLabels);
    if (labels === undefined) ok = false;
    else out.matchLabels = labels;
  }
  if (given(m.matchExpressions)) {
    const exprs = list(ctx, [...path, 'matchExpressions'], m.matchExpressions);
    if (exprs === undefined) ok = false;
    else {
      const reqs = exprs.map((e, i) => requirement(ctx, [...path, 'matchExpressions', i], e));
      if (reqs.every((r): r is LabelSelectorRequirement => r !== undefined)) out.matchExpressions = reqs;
      else ok = false;
    }
  }
  return ok ? out : undefined;
}

function requirement(ctx: Ctx, path: Path, v: unknown): LabelSelectorRequirement | undefined {
  const m = mapping(ctx, path, v, ['key', 'operator', 'values']);
  if (m === undefined) return undefined;
  let ok = true;
  let key: string | undefined;
  if (!given(m.key)) {
    ctx.report([...path, 'key'], 'is required');
    ok = false;
  } else {
    key = checkedString(ctx, [...path, 'key'], m.key, labelKeyProblem);
    if (key === undefined) ok = false;
  }
  let operator: SelectorOperator | undefined;
  if (!given(m.operator)) {
    ctx.report([...path, 'operator'], `is required (${SELECTOR_OPERATORS.join(', ')})`);
    ok = false;
  } else if (typeof m.operator !== 'string' || !(SELECTOR_OPERATORS as readonly string[]).includes(m.operator)) {
    ctx.report([...path, 'operator'], `must be one of ${SELECTOR_OPERATORS.join(', ')}, got ${describe(m.operator)}`);
    ok = false;
  } else {
    operator = m.operator as SelectorOperator;
  }
  const values: string[] = [];
  if (given(m.values)) {
    const raw = list(ctx, [...path, 'values'], m.values);
    if (raw === undefined) ok = false;
    else {
      raw.forEach((value, i) => {
        const s = checkedString(ctx, [...path, 'values', i], value, (x) => labelValueProblem(key ?? String(m.key), x));
        if (s === undefined) ok = false;
        else values.push(s);
      });
    }
  }
  if (operator === 'In' || operator === 'NotIn') {
    if (!given(m.values) || (Array.isArray(m.values) && m.values.length === 0)) {
      ctx.report([...path, 'values'], `must be non-empty for operator ${operator}`);
      ok = false;
    }
  } else if (operator !== undefined && given(m.values) && Array.isArray(m.values) && m.values.length > 0) {
    ctx.report([...path, 'values'], `must be empty for operator ${operator}`);
    ok = false;
  }
  if (!ok || key === undefined || operator === undefined) return undefined;
  return operator === 'In' || operator === 'NotIn' ? { key, operator, values } : { key, operator };
}

/** `hostBits`: the text had host bits set; `cidr` is the network it denotes. */
export type CidrResult = { cidr: Cidr; hostBits: boolean } | { problem: string };

/**
 * An IPv4 CIDR as the policy language accepts it, IPv6 refused by name. Host bits are
 * accepted as the API server accepts them ("10.0.0.1/8" is 10.0.0.0/8) and flagged, so the
 * parser can warn with the canonical form.
 */
export function policyCidr(s: string): CidrResult {
  if (s.includes(':')) return { problem: `'${s}' is an IPv6 CIDR: sluice's dataplane is IPv4-only` };
  if (s.trim() !== s) return { problem: `'${s}' is not an IPv4 CIDR: it has surrounding spaces` };
  try {
    const cidr = parseCidr(s, true);
    return { cidr, hostBits: parseIPv4(s.slice(0, s.indexOf('/'))) !== cidr.base };
  } catch (e) {
    const msg = (e as Error).message;
    return { problem: msg.startsWith(`'${s}'`) ? msg : `'${s}' is not an IPv4 CIDR: ${msg}` };
  }
}

/** The text of a CIDR as a policy keeps it (canonical), warning when the input had host bits. */
function canonicalCidr(ctx: Ctx, at: Path, text: string, r: { cidr: Cidr; hostBits: boolean }): string {
  const canonical = formatCidr(r.cidr);
  if (r.hostBits) ctx.warn(at, `'${text}' has host bits set: it is taken as ${canonical} (write ${canonical} to say so)`);
  return canonical;
}

function ipBlock(ctx: Ctx, path: Path, v: unknown): IPBlock | undefined {
  const m = mapping(ctx, path, v, ['cidr', 'except']);
  if (m === undefined) return undefined;
  let ok = true;
  let cidr: Cidr | undefined;
  let cidrText: string | undefined;
  if (!given(m.cidr)) {
    ctx.report([...path, 'cidr'], 'is required');
    ok = false;
  } else {
    cidrText = string(ctx, [...path, 'cidr'], m.cidr);
    if (cidrText === undefined) ok = false;
    else {
      const r = policyCidr(cidrText);
      if ('problem' in r) {
        ctx.report([...path, 'cidr'], r.problem);
        ok = false;
      } else {
        cidr = r.cidr;
        cidrText = canonicalCidr(ctx, [...path, 'cidr'], cidrText, r);
      }
    }
  }
  const except: string[] = [];
  if (given(m.except)) {
    const raw = list(ctx, [...path, 'except'], m.except);
    if (raw === undefined) ok = false;
    else {
      raw.forEach((e, i) => {
        const at = [...path, 'except', i];
        const s = string(ctx, at, e);
        if (s === undefined) {
          ok = false;
          return;
        }
        const r = policyCidr(s);
        if ('problem' in r) {
          ctx.report(at, r.problem);
          ok = false;
          return;
        }
        if (cidr !== undefined && !(r.cidr.prefix > cidr.prefix && cidrContains(cidr, r.cidr.base))) {
          ctx.report(at, `'${s}' is not strictly inside cidr ${formatCidr(cidr)}`);
          ok = false;
          return;
        }
        except.push(canonicalCidr(ctx, at, s, r));
      });
    }
  }
  if (!ok || cidrText === undefined) return undefined;
  return given(m.except) ? { cidr: cidrText, except } : { cidr: cidrText };
}

function peer(ctx: Ctx, path: Path, v: unknown): NetworkPolicyPeer | undefined {
  const m = mapping(ctx, path, v, ['podSelector', 'namespaceSelector', 'ipBlock']);
  if (m === undefined) return undefined;
  const hasPod = given(m.podSelector);
  const hasNs = given(m.namespaceSelector);
  const hasIp = given(m.ipBlock);
  let ok = true;
  if (!hasPod && !hasNs && !hasIp) {
    ctx.report(path, 'must set podSelector, namespaceSelector or ipBlock');
    ok = false;
  }
  if (hasIp && (hasPod || hasNs)) {
    ctx.report(path, `ipBlock may not be combined with ${hasPod && hasNs ? 'podSelector and namespaceSelector' : hasPod ? 'podSelector' : 'namespaceSelector'} in one peer`);
    ok = false;
  }
  const out: NetworkPolicyPeer = {};
  if (hasPod) {
    const s = selector(ctx, [...path, 'podSelector'], m.podSelector);
    if (s === undefined) ok = false;
    else out.podSelector = s;
  }
  if (hasNs) {
    const s = selector(ctx, [...path, 'namespaceSelector'], m.namespaceSelector);
    if (s === undefined) ok = false;
    else out.namespaceSelector = s;
  }
  if (hasIp) {
    const b = ipBlock(ctx, [...path, 'ipBlock'], m.ipBlock);
    if (b === undefined) ok = false;
    else out.ipBlock = b;
  }
  return ok ? out : undefined;
}

function port(ctx: Ctx, path: Path, v: unknown): NetworkPolicyPort | undefined {
  const m = mapping(ctx, path, v, ['protocol', 'port', 'endPort']);
  if (m === undefined) return undefined;
  let ok = true;
  let protocol: Protocol = 'TCP';
  if (given(m.protocol)) {
    if (typeof m.protocol !== 'string' || !(PROTOCOLS as readonly string[]).includes(m.protocol)) {
      ctx.report([...path, 'protocol'], `must be TCP, UDP or SCTP, got ${describe(m.protocol)}`);
      ok = false;
    } else protocol = m.protocol as Protocol;
  }
  let portValue: number | string | undefined;
  if (given(m.port)) {
    if (typeof m.port === 'string') {
      const problem = portNameProblem(m.port);
      if (problem !== undefined) {
        ctx.report([...path, 'port'], problem);
        ok = false;
      } else portValue = m.port;
    } else if (typeof m.port === 'number') {
      portValue = portNumber(ctx, [...path, 'port'], m.port);
      if (portValue === undefined) ok = false;
    } else {
      ctx.report([...path, 'port'], `must be a port number or a port name, got ${describe(m.port)}`);
      ok = false;
    }
  }
  let endPort: number | undefined;
  if (given(m.endPort)) {
    const at = [...path, 'endPort'];
    endPort = portNumber(ctx, at, m.endPort);
    if (endPort === undefined) ok = false;
    else if (!given(m.port)) {
      ctx.report(at, 'may not be specified without port');
      ok = false;
    } else if (typeof m.port === 'string') {
      ctx.report(at, `may not be specified with a named port ('${m.port}')`);
      ok = false;
    } else if (typeof portValue === 'number' && endPort < portValue) {
      ctx.report(at, `must be greater than or equal to port (${portValue}), got ${endPort}`);
      ok = false;
    }
  }
  if (!ok) return undefined;
  const out: NetworkPolicyPort = { protocol };
  if (portValue !== undefined) out.port = portValue;
  if (endPort !== undefined) out.endPort = endPort;
  return out;
}

/** `from`/`to`/`ports` of a rule: a list of items, each validated by `item`. */
function items<T>(ctx: Ctx, path: Path, v: unknown, item: (ctx: Ctx, path: Path, v: unknown) => T | undefined): T[] | undefined {
  const raw = list(ctx, path, v);
  if (raw === undefined) return undefined;
  const out = raw.map((x, i) => item(ctx, [...path, i], x));
  return out.every((x): x is T => x !== undefined) ? out : undefined;
}

function ingressRule(ctx: Ctx, path: Path, v: unknown): NetworkPolicyIngressRule | undefined {
  const m = mapping(ctx, path, v, ['from', 'ports']);
  if (m === undefined) return undefined;
  const out: NetworkPolicyIngressRule = {};
  let ok = true;
  if (given(m.from)) {
    const peers = items(ctx, [...path, 'from'], m.from, peer);
    if (peers === undefined) ok = false;
    else out.from = peers;
  }
  if (given(m.ports)) {
    const ports = items(ctx, [...path, 'ports'], m.ports, port);
    if (ports === undefined) ok = false;
    else out.ports = ports;
  }
  return ok ? out : undefined;
}

function egressRule(ctx: Ctx, path: Path, v: unknown): NetworkPolicyEgressRule | undefined {
  const m = mapping(ctx, path, v, ['to', 'ports']);
  if (m === undefined) return undefined;
  const out: NetworkPolicyEgressRule = {};
  let ok = true;
  if (given(m.to)) {
    const peers = items(ctx, [...path, 'to'], m.to, peer);
    if (peers === undefined) ok = false;
    else out.to = peers;
  }
  if (given(m.ports)) {
    const ports = items(ctx, [...path, 'ports'], m.ports, port);
    if (ports === undefined) ok = false;
    else out.ports = ports;
  }
  return ok ? out : undefined;
}

/** ObjectMeta fields the API server fills in: accepted (kubectl get -o yaml prints them) and ignored. */
const SERVER_METADATA = [
  'uid',
  'resourceVersion',
  'generation',
  'creationTimestamp',
  'deletionTimestamp',
  'deletionGracePeriodSeconds',
  'managedFields',
  'selfLink',
  'ownerReferences',
  'finalizers',
];

function metadata(ctx: Ctx, path: Path, v: unknown): PolicyMetadata | undefined {
  if (!given(v)) {
    ctx.report(path, 'is required (with at least a name)');
    return undefined;
  }
  const m = mapping(ctx, path, v, ['name', 'namespace', 'labels', 'annotations'], [...SERVER_METADATA, 'generateName']);
  if (m === undefined) return undefined;
  let ok = true;
  let name: string | undefined;
  if (!given(m.name)) {
    ctx.report([...path, 'name'], given(m.generateName) ? 'is required (generateName is not supported)' : 'is required');
    ok = false;
  } else {
    name = checkedString(ctx, [...path, 'name'], m.name, dnsSubdomainProblem);
    if (name === undefined) ok = false;
  }
  let namespace = 'default';
  if (given(m.namespace)) {
    const ns = checkedString(ctx, [...path, 'namespace'], m.namespace, dnsLabelProblem);
    if (ns === undefined) ok = false;
    else namespace = ns;
  }
  const out: PolicyMetadata = { name: name ?? '', namespace };
  if (given(m.labels)) {
    const labels = labelMap(ctx, [...path, 'labels'], m.labels);
    if (labels === undefined) ok = false;
    else out.labels = labels;
  }
  if (given(m.annotations)) {
    const annotations = labelMap(ctx, [...path, 'annotations'], m.annotations, 'annotation');
    if (annotations === undefined) ok = false;
    else out.annotations = annotations;
  }
  return ok ? out : undefined;
}

/**
 * The spec, with policyTypes defaulted as the API does when absent or empty: Ingress
 * always, plus Egress when the policy has at least one egress rule.
 */
function spec(ctx: Ctx, path: Path, v: unknown): NetworkPolicy['spec'] | undefined {
  if (!given(v)) {
    ctx.report(path, 'is required (with at least podSelector)');
    return undefined;
  }
  const m = mapping(ctx, path, v, ['podSelector', 'policyTypes', 'ingress', 'egress']);
  if (m === undefined) return undefined;
  let ok = true;
  let podSelector: LabelSelector | undefined;
  if (!given(m.podSelector)) {
    ctx.report([...path, 'podSelector'], 'is required (podSelector: {} selects every pod of the namespace)');
    ok = false;
  } else {
    podSelector = selector(ctx, [...path, 'podSelector'], m.podSelector);
    if (podSelector === undefined) ok = false;
  }
  let policyTypes: PolicyType[] | undefined;
  if (given(m.policyTypes)) {
    const raw = list(ctx, [...path, 'policyTypes'], m.policyTypes);
    if (raw === undefined) ok = false;
    else {
      const seen: PolicyType[] = [];
      raw.forEach((t, i) => {
        const at = [...path, 'policyTypes', i];
        if (typeof t !== 'string' || !(POLICY_TYPES as readonly string[]).includes(t)) {
          ctx.report(at, `must be Ingress or Egress, got ${describe(t)}`);
          ok = false;
        } else if (seen.includes(t as PolicyType)) {
          ctx.report(at, `duplicate ${t}`);
          ok = false;
        } else seen.push(t as PolicyType);
      });
      if (seen.length > 0) policyTypes = seen;
    }
  }
  let ingress: NetworkPolicyIngressRule[] = [];
  if (given(m.ingress)) {
    const rules = items(ctx, [...path, 'ingress'], m.ingress, ingressRule);
    if (rules === undefined) ok = false;
    else ingress = rules;
  }
  let egress: NetworkPolicyEgressRule[] = [];
  if (given(m.egress)) {
    const rules = items(ctx, [...path, 'egress'], m.egress, egressRule);
    if (rules === undefined) ok = false;
    else egress = rules;
  }
  if (!ok || podSelector === undefined) return undefined;
  // An order-independent canonical form: Ingress before Egress.
  const types = policyTypes ?? (egress.length > 0 ? ['Ingress', 'Egress'] : ['Ingress']);
  return { podSelector, policyTypes: POLICY_TYPES.filter((t) => types.includes(t)), ingress, egress };
}

const POLICY_FIELDS = ['apiVersion', 'kind', 'metadata', 'spec'];
const LIST_METADATA = ['resourceVersion', 'continue', 'remainingItemCount', 'selfLink'];

/** "namespace/name" from a raw document, for error messages, when it has a string name. */
function policyLabel(v: unknown): string | undefined {
  if (!isMapping(v) || !isMapping(v.metadata)) return undefined;
  const { name, namespace } = v.metadata;
  if (typeof name !== 'string' || name === '') return undefined;
  return `${typeof namespace === 'string' && namespace !== '' ? namespace : 'default'}/${name}`;
}

/** "namespace/name" of a raw document whose name (and namespace, if any) are valid. */
function identity(v: unknown): string | undefined {
  if (!isMapping(v) || !isMapping(v.metadata)) return undefined;
  const { name, namespace } = v.metadata;
  if (typeof name !== 'string' || dnsSubdomainProblem(name) !== undefined) return undefined;
  if (!given(namespace)) return `default/${name}`;
  if (typeof namespace !== 'string' || dnsLabelProblem(namespace) !== undefined) return undefined;
  return `${namespace}/${name}`;
}

/**
 * Parses NetworkPolicy documents. `source` names the input in messages. Returns the
 * policies in input order; throws one `PolicyParseError` listing every problem. What is
 * accepted but worth telling (a CIDR with host bits, kept in its canonical form) is added
 * to `warnings`, in the shape of a problem.
 */
export function parsePolicies(text: string, source: string, warnings?: PolicyProblem[]): NetworkPolicy[] {
  const problems: PolicyProblem[] = [];
  const lineCounter = new LineCounter();
  const parsed = parseAllDocuments(text, { lineCounter, prettyErrors: true, uniqueKeys: true });
  const docs: Document.Parsed[] = Array.isArray(parsed) ? parsed : [];
  const found: NetworkPolicy[] = [];
  /** "namespace/name" → where it was first seen ("document 2", "document 2 items[3]"). */
  const seen = new Map<string, string>();

  docs.forEach((doc, docIndex) => {
    const document = docIndex + 1;
    if (doc.errors.length > 0) {
      for (const e of doc.errors) {
        const first = (e.message.split('\n')[0] ?? '').replace(/ at line \d+, column \d+:?\s*$/, '').replace(/:\s*$/, '');
        const line = e.linePos?.[0].line;
        problems.push({ source, document, ...(line === undefined ? {} : { line }), path: '', message: `not valid YAML: ${first}` });
      }
      return;
    }
    const lineOf = (path: Path): number | undefined => {
      for (let n = path.length; n >= 0; n--) {
        const node: unknown = n === 0 ? doc.contents : doc.getIn(path.slice(0, n), true);
        if (isNode(node) && node.range) return lineCounter.linePos(node.range[0]).line;
      }
      return undefined;
    };
    const at = (policy: string | undefined, path: Path, message: string): PolicyProblem => {
      const line = lineOf(path);
      return { source, document, ...(line === undefined ? {} : { line }), ...(policy === undefined ? {} : { policy }), path: formatPath(path), message };
    };
    const ctxFor = (policy: string | undefined): Ctx => ({
      report: (path, message) => problems.push(at(policy, path, message)),
      warn: (path, message) => warnings?.push(at(policy, path, message)),
    });
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: 100 });
    } catch (e) {
      problems.push({ source, document, path: '', message: `not usable YAML: ${(e as Error).message}` });
      return;
    }
    if (value === null || value === undefined) return; // an empty document (a stray `---`)

    checkDocument(value, document, ctxFor, seen, found);
  });

  if (problems.length > 0) throw new PolicyParseError(source, problems);
  return found;
}

/** Checks one decoded document (a policy or a list of them), adding valid policies to `found`. */
function checkDocument(value: unknown, document: number, ctxFor: (policy: string | undefined) => Ctx, seen: Map<string, string>, found: NetworkPolicy[]): void {
  const addPolicy = (ctx: Ctx, path: Path, v: unknown, where: string, typeImplied: boolean): void => {
    const p = policy(ctx, path, v, typeImplied);
    // Duplicates are looked for even among invalid policies, as long as the name is usable.
    const key = identity(v);
    if (key !== undefined) {
      const earlier = seen.get(key);
      if (earlier !== undefined) {
        ctx.report([...path, 'metadata', 'name'], `duplicate NetworkPolicy ${key} (also in ${earlier})`);
        return;
      }
      seen.set(key, where);
    }
    if (p !== undefined) found.push(p);
  };

  const top = ctxFor(policyLabel(value));
  if (!isMapping(value)) {
    top.report([], `must be a NetworkPolicy, List or NetworkPolicyList mapping, got ${describe(value)}`);
    return;
  }
  const kind = value.kind;
  if (kind === 'List' || kind === 'NetworkPolicyList') {
    const listCtx = ctxFor(undefined);
    const m = mapping(listCtx, [], value, ['apiVersion', 'kind', 'metadata', 'items'])!;
    const wantVersion = kind === 'List' ? 'v1' : API_VERSION;
    if (!given(m.apiVersion)) listCtx.report(['apiVersion'], `is required (${wantVersion} for kind ${kind})`);
    else if (m.apiVersion !== wantVersion) listCtx.report(['apiVersion'], `must be ${wantVersion} for kind ${kind}, got ${describe(m.apiVersion)}`);
    if (given(m.metadata)) mapping(listCtx, ['metadata'], m.metadata, [], LIST_METADATA);
    if (!given(m.items)) {
      listCtx.report(['items'], 'is required (a list of NetworkPolicy objects)');
      return;
    }
    const raw = list(listCtx, ['items'], m.items);
    raw?.forEach((item, i) => addPolicy(ctxFor(policyLabel(item)), ['items', i], item, `document ${document} items[${i}]`, kind === 'NetworkPolicyList'));
    return;
  }
  addPolicy(top, [], value, `document ${document}`, false);
}

/**
 * Validates and normalises already-decoded NetworkPolicy objects (or lists of them), the
 * same way `parsePolicies` does its documents: value i is reported as document i+1.
 * Normalised policies come back unchanged (normalisation is idempotent); objects in the
 * API's wire form get their defaults. Throws one `PolicyParseError` listing every problem;
 * `warnings` as for `parsePolicies`.
 */
export function validatePolicies(values: readonly unknown[], source: string, warnings?: PolicyProblem[]): NetworkPolicy[] {
  const problems: PolicyProblem[] = [];
  const found: NetworkPolicy[] = [];
  const seen = new Map<string, string>();
  values.forEach((value, i) => {
    const document = i + 1;
    const at = (policy: string | undefined, path: Path, message: string): PolicyProblem =>
      ({ source, document, ...(policy === undefined ? {} : { policy }), path: formatPath(path), message });
    const ctxFor = (policy: string | undefined): Ctx => ({
      report: (path, message) => problems.push(at(policy, path, message)),
      warn: (path, message) => warnings?.push(at(policy, path, message)),
    });
    checkDocument(value, document, ctxFor, seen, found);
  });
  if (problems.length > 0) throw new PolicyParseError(source, problems);
  return found;
}

/**
 * One NetworkPolicy object at `path` (the document root, or `items[i]` of a list).
 * `typeImplied`: inside a NetworkPolicyList, where apiVersion and kind may be left out.
 */
function policy(ctx: Ctx, path: Path, v: unknown, typeImplied: boolean): NetworkPolicy | undefined {
  if (!isMapping(v)) {
    ctx.report(path, `must be a NetworkPolicy mapping, got ${describe(v)}`);
    return undefined;
  }
  let ok = true;
  const inList = path.length > 0;
  if (!given(v.kind)) {
    if (!typeImplied) {
      ctx.report([...path, 'kind'], inList ? `is required (${KIND})` : `is required (${KIND}, List or NetworkPolicyList)`);
      ok = false;
    }
  } else if (v.kind !== KIND) {
    // Something else than a policy: its other fields would only add noise.
    ctx.report([...path, 'kind'], inList ? `must be ${KIND}, got ${describe(v.kind)}` : `must be ${KIND}, List or NetworkPolicyList, got ${describe(v.kind)}`);
    return undefined;
  }
  if (!given(v.apiVersion)) {
    if (!typeImplied) {
      ctx.report([...path, 'apiVersion'], `is required (${API_VERSION})`);
      ok = false;
    }
  } else if (v.apiVersion !== API_VERSION) {
    ctx.report([...path, 'apiVersion'], `must be ${API_VERSION}, got ${describe(v.apiVersion)}`);
    ok = false;
  }
  mapping(ctx, path, v, POLICY_FIELDS);
  if (Object.keys(v).some((k) => !POLICY_FIELDS.includes(k))) ok = false;
  const meta = metadata(ctx, [...path, 'metadata'], v.metadata);
  const sp = spec(ctx, [...path, 'spec'], v.spec);
  if (!ok || meta === undefined || sp === undefined) return undefined;
  return { apiVersion: API_VERSION, kind: KIND, metadata: meta, spec: sp };
}
