/**
 * The CNI protocol, as the sluice plugin speaks it. Pure: parses and validates the
 * environment (CNI_*) and the network configuration from stdin, negotiates the spec
 * version, and builds results and error objects in the formats of CNI spec 0.4.0,
 * 1.0.0 and 1.1.0. Nothing here does I/O; plugin.ts wires it to the process and the agent.
 */
import type { AgentEndpoint, CniAddResponse } from '../api/types.js';

/** Spec versions sluice speaks, oldest first. STATUS and GC need 1.1.0. */
export const SUPPORTED_VERSIONS = ['0.4.0', '1.0.0', '1.1.0'] as const;
export type CniVersion = (typeof SUPPORTED_VERSIONS)[number];
export const LATEST_VERSION: CniVersion = '1.1.0';

export const DEFAULT_SOCKET = '/run/sluice/agent.sock';

/** Well-known CNI error codes (SPEC.md "Well-known Error Codes") and sluice's own (999+). */
export const ErrorCode = {
  IncompatibleVersion: 1,
  UnsupportedField: 2,
  UnknownContainer: 3,
  InvalidEnvironment: 4,
  IoFailure: 5,
  DecodeFailure: 6,
  InvalidNetworkConfig: 7,
  TryAgainLater: 11,
  /** STATUS only: the plugin cannot service ADD requests. */
  NotAvailable: 50,
  /** The agent failed the request (its message is the error's msg). */
  AgentFailure: 999,
  /** CHECK: the endpoint is not what the runtime expects (the problems are in details). */
  CheckFailed: 1000,
  /** The agent answered something the plugin does not understand (version skew?). */
  AgentProtocol: 1001,
} as const;

export const COMMANDS = ['ADD', 'DEL', 'CHECK', 'VERSION', 'STATUS', 'GC'] as const;
export type CniCommand = (typeof COMMANDS)[number];

/** A failure the plugin reports to the runtime as a CNI error object. */
export class CniError extends Error {
  constructor(readonly code: number, msg: string, readonly details?: string) {
    super(msg);
    this.name = 'CniError';
  }
}

export interface CniErrorObject {
  cniVersion: string;
  code: number;
  msg: string;
  details?: string;
}

/** The error object printed on stdout (details only when there are some). */
export function errorObject(cniVersion: string, err: CniError): CniErrorObject {
  const o: CniErrorObject = { cniVersion, code: err.code, msg: err.message };
  if (err.details) o.details = err.details;
  return o;
}

export function isSupportedVersion(v: unknown): v is CniVersion {
  return typeof v === 'string' && (SUPPORTED_VERSIONS as readonly string[]).includes(v);
}

/** Compares two x.y.z versions (missing parts count as 0). */
export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map((n) => Number.parseInt(n, 10) || 0);
  const pb = b.split('.').map((n) => Number.parseInt(n, 10) || 0);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d < 0 ? -1 : 1;
  }
  return 0;
}

/**
 * The version to speak for a configuration: its `cniVersion` when sluice supports it.
 * A configuration without `cniVersion` but with a `cniVersions` list (1.1.0 version
 * negotiation; runtimes normally resolve it before calling the plugin) gets the highest
 * version both sides support. Throws CniError 1 (incompatible) or 7 (malformed).
 */
export function negotiateVersion(conf: { cniVersion?: unknown; cniVersions?: unknown }): CniVersion {
  const supported = SUPPORTED_VERSIONS.join(', ');
  if (conf.cniVersion === undefined || conf.cniVersion === '') {
    if (conf.cniVersions !== undefined) {
      if (!Array.isArray(conf.cniVersions) || conf.cniVersions.some((v) => typeof v !== 'string')) {
        throw new CniError(ErrorCode.InvalidNetworkConfig, 'cniVersions must be a list of version strings');
      }
      const common = (conf.cniVersions as string[]).filter(isSupportedVersion).sort(compareVersions);
      const best = common[common.length - 1];
      if (!best) {
        throw new CniError(ErrorCode.IncompatibleVersion, 'incompatible CNI versions',
          `the configuration supports [${(conf.cniVersions as string[]).join(', ')}]; sluice supports ${supported}`);
      }
      return best;
    }
    throw new CniError(ErrorCode.IncompatibleVersion, 'incompatible CNI versions',
      `the network configuration has no cniVersion (which means 0.2.0); sluice supports ${supported}`);
  }
  if (typeof conf.cniVersion !== 'string') {
    throw new CniError(ErrorCode.InvalidNetworkConfig, 'cniVersion must be a string such as "1.0.0"');
  }
  if (!isSupportedVersion(conf.cniVersion)) {
    throw new CniError(ErrorCode.IncompatibleVersion, 'incompatible CNI versions',
      `the network configuration asks for cniVersion ${conf.cniVersion}; sluice supports ${supported}`);
  }
  return conf.cniVersion;
}

/** The version a command needs at least (CHECK came with 0.4.0, STATUS and GC with 1.1.0). */
export function minimumVersion(command: CniCommand): CniVersion {
  return command === 'STATUS' || command === 'GC' ? '1.1.0' : '0.4.0';
}

export interface VersionResult {
  cniVersion: string;
  supportedVersions: string[];
}

/** VERSION's output: speaks the version the runtime asked for when sluice supports it. */
export function versionResult(requested?: unknown): VersionResult {
  return {
    cniVersion: isSupportedVersion(requested) ? requested : LATEST_VERSION,
    supportedVersions: [...SUPPORTED_VERSIONS],
  };
}

// ---------------------------------------------------------------------------------------
// Environment

export interface CniEnv {
  command: CniCommand;
  containerId?: string;
  netns?: string;
  ifname?: string;
  /** CNI_ARGS, raw. */
  args?: string;
  /** CNI_PATH, split (sluice delegates to no other plugin, so it is only recorded). */
  path: string[];
}

/** Which variables each command needs (SPEC.md "Parameters"; CNI_PATH is not needed: sluice delegates nothing). */
const REQUIRED: Record<CniCommand, readonly string[]> = {
  ADD: ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME'],
  CHECK: ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME'],
  DEL: ['CNI_CONTAINERID', 'CNI_IFNAME'],
  VERSION: [],
  STATUS: [],
  GC: [],
};

/** Container ids: an alphanumeric, then alphanumerics, '_', '.' or '-' (SPEC.md). */
const CONTAINER_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

/** Why `name` cannot be an interface name (SPEC.md: < 16 characters, not . or .., no /, : or white space). */
export function ifnameProblem(name: string): string | undefined {
  if (name.length === 0) return 'it is empty';
  if (name.length > 15) return 'it is longer than 15 characters';
  if (name === '.' || name === '..') return `it is '${name}'`;
  if (/[/:\s]/.test(name)) return "it contains '/', ':' or white space";
  return undefined;
}

/**
 * Reads and validates CNI_* for the command. Throws CniError 4 naming the missing or
 * invalid variables (every missing one, like libcni's skel).
 */
export function readEnv(env: Record<string, string | undefined>): CniEnv {
  const raw = env.CNI_COMMAND ?? '';
  if (raw === '') {
    throw new CniError(ErrorCode.InvalidEnvironment, 'required environment variable CNI_COMMAND is missing',
      `set CNI_COMMAND to one of ${COMMANDS.join(', ')}`);
  }
  if (!(COMMANDS as readonly string[]).includes(raw)) {
    throw new CniError(ErrorCode.InvalidEnvironment, `unknown CNI_COMMAND '${raw}'`,
      `sluice handles ${COMMANDS.join(', ')}`);
  }
  const command = raw as CniCommand;
  const missing = REQUIRED[command].filter((v) => !env[v]);
  if (missing.length > 0) {
    throw new CniError(ErrorCode.InvalidEnvironment,
      `required environment variable${missing.length > 1 ? 's' : ''} ${missing.join(', ')} missing for ${command}`);
  }
  const e: CniEnv = { command, path: (env.CNI_PATH ?? '').split(':').filter(Boolean) };
  if (env.CNI_CONTAINERID) e.containerId = env.CNI_CONTAINERID;
  if (env.CNI_NETNS) e.netns = env.CNI_NETNS;
  if (env.CNI_IFNAME) e.ifname = env.CNI_IFNAME;
  if (env.CNI_ARGS) e.args = env.CNI_ARGS;
  if (REQUIRED[command].length === 0) return e; // VERSION, STATUS, GC: the rest is not used
  if (e.containerId !== undefined && !CONTAINER_ID.test(e.containerId)) {
    throw new CniError(ErrorCode.InvalidEnvironment, `CNI_CONTAINERID '${e.containerId}' is not a valid container id`,
      'a container id starts with a letter or digit, followed by letters, digits, _, . or -');
  }
  if (e.ifname !== undefined) {
    const p = ifnameProblem(e.ifname);
    if (p) throw new CniError(ErrorCode.InvalidEnvironment, `CNI_IFNAME '${e.ifname}' is not a valid interface name: ${p}`);
  }
  return e;
}

export interface CniArgs {
  /** Every KEY=VALUE pair, in order of appearance (the last of a repeated key wins). */
  pairs: Record<string, string>;
  podNamespace?: string;
  podName?: string;
  ignoreUnknown: boolean;
}

/**
 * Parses CNI_ARGS ("K=V;K2=V2"). Reads K8S_POD_NAMESPACE and K8S_POD_NAME; every other
 * key is ignored (so IgnoreUnknown=1 is accepted but changes nothing). Empty segments
 * are skipped; a segment without '=' or with an empty key is CniError 4.
 */
export function parseCniArgs(s: string | undefined): CniArgs {
  const pairs: Record<string, string> = {};
  for (const seg of (s ?? '').split(';')) {
    if (seg.trim() === '') continue;
    const eq = seg.indexOf('=');
    if (eq <= 0) {
      throw new CniError(ErrorCode.InvalidEnvironment, `CNI_ARGS: '${seg}' is not of the form KEY=VALUE`,
        'CNI_ARGS is a list of KEY=VALUE pairs separated by semicolons, e.g. K8S_POD_NAMESPACE=default;K8S_POD_NAME=web');
    }
    pairs[seg.slice(0, eq).trim()] = seg.slice(eq + 1);
  }
  const out: CniArgs = { pairs, ignoreUnknown: /^(1|true)$/i.test(pairs.IgnoreUnknown ?? '') };
  if (pairs.K8S_POD_NAMESPACE) out.podNamespace = pairs.K8S_POD_NAMESPACE;
  if (pairs.K8S_POD_NAME) out.podName = pairs.K8S_POD_NAME;
  return out;
}

// ---------------------------------------------------------------------------------------
// Network configuration (stdin)

export interface Attachment {
  containerId: string;
  ifname: string;
}

export interface Dns {
  nameservers?: string[];
  domain?: string;
  search?: string[];
  options?: string[];
}

export interface NetConf {
  cniVersion: CniVersion;
  name: string;
  type: string;
  /** The agent's socket. */
  socket: string;
  /** Overrides the per-command agent timeout. */
  timeoutSeconds?: number;
  prevResult?: unknown;
  runtimeConfig?: Record<string, unknown>;
  /** From args.cni.labels (CONVENTIONS.md) and args.labels (SPEC.md example). */
  labels: Record<string, string>;
  dns?: Dns;
  /** GC: cni.dev/valid-attachments (undefined when absent). */
  validAttachments?: Attachment[];
  raw: Record<string, unknown>;
}

const NETWORK_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
/** sockaddr_un.sun_path holds 108 bytes with the terminating NUL. */
const MAX_SOCKET_PATH = 107;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Decodes stdin as a JSON object. Throws CniError 6 (never a SyntaxError). */
export function decodeConfig(text: string): Record<string, unknown> {
  if (text.trim() === '') {
    throw new CniError(ErrorCode.DecodeFailure, 'no network configuration on stdin',
      'the runtime must write the network configuration (JSON) to the plugin\'s stdin');
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new CniError(ErrorCode.DecodeFailure, 'the network configuration on stdin is not valid JSON', (e as Error).message);
  }
  if (!isObject(v)) {
    throw new CniError(ErrorCode.DecodeFailure, 'the network configuration on stdin is not a JSON object',
      `got ${Array.isArray(v) ? 'an array' : v === null ? 'null' : `a ${typeof v}`}`);
  }
  return v;
}

/** The cniVersion a (possibly broken) stdin asks for, when sluice supports it; for error objects. */
export function requestedVersion(text: string | undefined): CniVersion | undefined {
  if (!text) return undefined;
  try {
    const v = JSON.parse(text) as unknown;
    if (isObject(v) && isSupportedVersion(v.cniVersion)) return v.cniVersion;
  } catch { /* not JSON: no version */ }
  return undefined;
}

function stringList(v: unknown): string[] | undefined {
  return Array.isArray(v) && v.every((x) => typeof x === 'string') ? (v as string[]) : undefined;
}

/** Labels from `args`: optional metadata, so entries of the wrong shape are ignored, never an error. */
function argsLabels(args: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (!isObject(args)) return out;
  if (isObject(args.labels)) {
    for (const [k, v] of Object.entries(args.labels)) if (typeof v === 'string') out[k] = v;
  }
  if (isObject(args.cni) && Array.isArray(args.cni.labels)) {
    for (const l of args.cni.labels) {
      if (isObject(l) && typeof l.key === 'string' && typeof l.value === 'string') out[l.key] = l.value;
    }
  }
  return out;
}

function parseDns(v: unknown): Dns | undefined {
  if (!isObject(v)) return undefined;
  const d: Dns = {};
  const ns = stringList(v.nameservers);
  if (ns) d.nameservers = ns;
  if (typeof v.domain === 'string') d.domain = v.domain;
  const search = stringList(v.search);
  if (search) d.search = search;
  const options = stringList(v.options);
  if (options) d.options = options;
  return d;
}

/** GC's list: `cni.dev/valid-attachments` (libcni also writes it as `cni.dev/attachments`). */
function parseAttachments(raw: Record<string, unknown>): Attachment[] | undefined {
  const key = 'cni.dev/valid-attachments' in raw ? 'cni.dev/valid-attachments'
    : 'cni.dev/attachments' in raw ? 'cni.dev/attachments' : undefined;
  if (!key) return undefined;
  const list = raw[key];
  if (!Array.isArray(list)) throw new CniError(ErrorCode.InvalidNetworkConfig, `${key} must be a list`);
  return list.map((a, i) => {
    if (!isObject(a) || typeof a.containerID !== 'string' || a.containerID === '' || typeof a.ifname !== 'string' || a.ifname === '') {
      throw new CniError(ErrorCode.InvalidNetworkConfig, `${key}[${i}] must be {"containerID": "...", "ifname": "..."}`,
        JSON.stringify(a));
    }
    return { containerId: a.containerID, ifname: a.ifname };
  });
}

/**
 * Decodes and validates the network configuration for `command`: 6 when stdin is not a
 * JSON object, 7 when a field is missing or malformed, 1 when the version is not one
 * sluice supports or too old for the command.
 */
export function parseNetConf(text: string, command: CniCommand): NetConf {
  const raw = decodeConfig(text);
  if (typeof raw.name !== 'string' || raw.name === '') {
    throw new CniError(ErrorCode.InvalidNetworkConfig, 'the network configuration has no name');
  }
  if (!NETWORK_NAME.test(raw.name)) {
    throw new CniError(ErrorCode.InvalidNetworkConfig, `network name '${raw.name}' is not valid`,
      'a network name starts with a letter or digit, followed by letters, digits, _, . or -');
  }
  if (typeof raw.type !== 'string' || raw.type === '') {
    throw new CniError(ErrorCode.InvalidNetworkConfig, 'the network configuration has no type', 'for sluice, "type": "sluice"');
  }
  const cniVersion = negotiateVersion(raw);
  const min = minimumVersion(command);
  if (compareVersions(cniVersion, min) < 0) {
    throw new CniError(ErrorCode.IncompatibleVersion, `${command} needs cniVersion ${min} or later`,
      `the network configuration asks for ${cniVersion}`);
  }
  let socket = DEFAULT_SOCKET;
  if (raw.socket !== undefined) {
    if (typeof raw.socket !== 'string' || !raw.socket.startsWith('/')) {
      throw new CniError(ErrorCode.InvalidNetworkConfig, 'socket must be the absolute path of the sluice agent\'s socket',
        `got ${JSON.stringify(raw.socket)}`);
    }
    if (Buffer.byteLength(raw.socket) > MAX_SOCKET_PATH) {
      throw new CniError(ErrorCode.InvalidNetworkConfig, `socket path '${raw.socket}' is longer than ${MAX_SOCKET_PATH} bytes`);
    }
    socket = raw.socket;
  }
  const conf: NetConf = { cniVersion, name: raw.name, type: raw.type, socket, labels: argsLabels(raw.args), raw };
  if (raw.timeoutSeconds !== undefined) {
    if (typeof raw.timeoutSeconds !== 'number' || !(raw.timeoutSeconds > 0) || raw.timeoutSeconds > 3600) {
      throw new CniError(ErrorCode.InvalidNetworkConfig, 'timeoutSeconds must be a number of seconds between 0 and 3600');
    }
    conf.timeoutSeconds = raw.timeoutSeconds;
  }
  if (raw.prevResult !== undefined && raw.prevResult !== null) conf.prevResult = raw.prevResult;
  if (isObject(raw.runtimeConfig)) conf.runtimeConfig = raw.runtimeConfig;
  const dns = parseDns(raw.dns);
  if (dns) conf.dns = dns;
  if (command === 'GC') {
    const att = parseAttachments(raw);
    if (att) conf.validAttachments = att;
  }
  return conf;
}

// ---------------------------------------------------------------------------------------
// Results

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;

export function isIPv4(s: unknown): s is string {
  return typeof s === 'string' && IPV4.test(s);
}

function protocolError(what: string, body: unknown): CniError {
  return new CniError(ErrorCode.AgentProtocol, `the sluice agent's answer is not what the plugin expects: ${what}`,
    `answer: ${JSON.stringify(body)?.slice(0, 500)}`);
}

/** Validates an endpoint as the agent describes it. Throws CniError 1001. */
export function validateEndpoint(v: unknown, body: unknown = v): AgentEndpoint {
  if (!isObject(v)) throw protocolError('no endpoint object', body);
  if (typeof v.id !== 'number' && typeof v.id !== 'string') throw protocolError('endpoint.id is missing', body);
  for (const k of ['name', 'ifname', 'netns', 'hostIfname'] as const) {
    if (typeof v[k] !== 'string') throw protocolError(`endpoint.${k} is not a string`, body);
  }
  if (!isIPv4(v.ip)) throw protocolError(`endpoint.ip ${JSON.stringify(v.ip)} is not an IPv4 address`, body);
  if (typeof v.mac !== 'string' || !MAC.test(v.mac)) throw protocolError(`endpoint.mac ${JSON.stringify(v.mac)} is not a MAC address`, body);
  if (typeof v.mtu !== 'number' || !Number.isInteger(v.mtu) || v.mtu < 68 || v.mtu > 65535) {
    throw protocolError(`endpoint.mtu ${JSON.stringify(v.mtu)} is not an MTU`, body);
  }
  return v as unknown as AgentEndpoint;
}

/** Validates the answer to POST /v1/cni/add. Throws CniError 1001. */
export function validateAddResponse(body: unknown): CniAddResponse {
  if (!isObject(body)) throw protocolError('not a JSON object', body);
  const endpoint = validateEndpoint(body.endpoint, body);
  if (!isIPv4(body.gateway)) throw protocolError(`gateway ${JSON.stringify(body.gateway)} is not an IPv4 address`, body);
  if (typeof body.podCIDR !== 'string') throw protocolError('podCIDR is not a string', body);
  return { endpoint, gateway: body.gateway, podCIDR: body.podCIDR };
}

export interface ResultInterface {
  name: string;
  mac?: string;
  sandbox?: string;
  /** 1.1.0 */
  mtu?: number;
}

export interface ResultIP {
  /** 0.4.0 only: "4" or "6". */
  version?: '4' | '6';
  address: string;
  gateway?: string;
  interface?: number;
}

export interface ResultRoute {
  dst: string;
  gw?: string;
}

export interface AddResult {
  cniVersion: CniVersion;
  interfaces: ResultInterface[];
  ips: ResultIP[];
  routes: ResultRoute[];
  dns: Dns;
}

export interface AddResultInput {
  ifname: string;
  netns: string;
  ip: string;
  mac: string;
  gateway: string;
  mtu?: number;
  dns?: Dns;
}

/**
 * ADD's result in the format of `version`: the pod interface (in its sandbox), its /32
 * with the link-local gateway, and a default route through that gateway. 0.4.0 adds
 * "version": "4" to each IP; 1.1.0 adds the interface's mtu.
 */
export function buildAddResult(version: CniVersion, r: AddResultInput): AddResult {
  const iface: ResultInterface = { name: r.ifname, mac: r.mac.toLowerCase(), sandbox: r.netns };
  if (compareVersions(version, '1.1.0') >= 0 && r.mtu !== undefined) iface.mtu = r.mtu;
  const ip: ResultIP = { address: `${r.ip}/32`, gateway: r.gateway, interface: 0 };
  const ips: ResultIP[] = [version === '0.4.0' ? { version: '4', ...ip } : ip];
  return {
    cniVersion: version,
    interfaces: [iface],
    ips,
    routes: [{ dst: '0.0.0.0/0', gw: r.gateway }],
    dns: r.dns ?? {},
  };
}

// ---------------------------------------------------------------------------------------
// prevResult (CHECK)

export interface PrevResult {
  interfaces: ResultInterface[];
  ips: { address: string; interface?: number }[];
}

/** Reads a prevResult of any version sluice speaks (0.4.0 "version" fields are ignored). Throws CniError 7. */
export function parsePrevResult(v: unknown): PrevResult {
  const bad = (what: string) => new CniError(ErrorCode.InvalidNetworkConfig, `prevResult is not a CNI result: ${what}`,
    JSON.stringify(v)?.slice(0, 500));
  if (!isObject(v)) throw bad('not an object');
  const interfaces: ResultInterface[] = [];
  if (v.interfaces !== undefined) {
    if (!Array.isArray(v.interfaces)) throw bad('interfaces is not a list');
    for (const i of v.interfaces) {
      if (!isObject(i) || typeof i.name !== 'string') throw bad('an interface has no name');
      const r: ResultInterface = { name: i.name };
      if (typeof i.mac === 'string') r.mac = i.mac;
      if (typeof i.sandbox === 'string') r.sandbox = i.sandbox;
      interfaces.push(r);
    }
  }
  const ips: PrevResult['ips'] = [];
  if (v.ips !== undefined) {
    if (!Array.isArray(v.ips)) throw bad('ips is not a list');
    for (const ip of v.ips) {
      if (!isObject(ip) || typeof ip.address !== 'string') throw bad('an ip has no address');
      ips.push(typeof ip.interface === 'number' ? { address: ip.address, interface: ip.interface } : { address: ip.address });
    }
  }
  return { interfaces, ips };
}

/**
 * What differs between the runtime's prevResult and what is there: the interface named
 * `ifname` in sandbox `netns` must be listed, and when the agent's endpoint is known, its
 * MAC and address must match. Returns the problems (empty when all is as expected).
 */
export function comparePrevResult(prev: PrevResult, want: { ifname: string; netns: string; endpoint?: AgentEndpoint }): string[] {
  const problems: string[] = [];
  const idx = prev.interfaces.findIndex((i) => i.name === want.ifname && (i.sandbox === undefined || i.sandbox === want.netns));
  if (idx < 0) {
    problems.push(`prevResult lists no interface ${want.ifname} in sandbox ${want.netns}`);
    return problems;
  }
  const iface = prev.interfaces[idx]!;
  const ep = want.endpoint;
  if (!ep) return problems;
  if (iface.mac !== undefined && iface.mac.toLowerCase() !== ep.mac.toLowerCase()) {
    problems.push(`interface ${want.ifname}: prevResult has MAC ${iface.mac}, the agent has ${ep.mac}`);
  }
  const mine = prev.ips.filter((ip) => ip.interface === idx);
  const addrs = mine.map((ip) => ip.address.split('/')[0]);
  if (mine.length === 0) {
    problems.push(`prevResult assigns no address to interface ${want.ifname}`);
  } else if (!addrs.includes(ep.ip)) {
    problems.push(`interface ${want.ifname}: prevResult has address ${mine.map((ip) => ip.address).join(', ')}, the agent has ${ep.ip}/32`);
  }
  if (ep.netns && ep.netns !== want.netns) {
    problems.push(`interface ${want.ifname}: the agent has it in ${ep.netns}, not ${want.netns}`);
  }
  return problems;
}
