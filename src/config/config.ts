/**
 * The node configuration: one YAML file, every key also settable by a flag. Every
 * name sluice creates (pins, state, sockets, devices) derives from it, so several
 * nodes run side by side in network namespaces on one machine. Pure: the caller reads
 * the file; `resolveConfig` validates and fills defaults.
 */
import { hostname } from 'node:os';
import { isAbsolute } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { parseStoreSpec } from '../store/spec.js';
import { tlsProblem, type StoreTlsFiles } from '../store/tls.js';
import { isIPv4, parseCidr, parseIPv4, cidrContains, cidrOverlaps, cidrWithin, formatCidr, type Cidr, type Ipv4 } from '../util/ipv4.js';
import { VXLAN_PORT } from '../net/vxlan.js';

export interface Config {
  nodeName: string;
  pinRoot: string;
  stateDir: string;
  runDir: string;
  clusterCIDR: string;
  blockSize: number;
  /** Pod MTU; 'auto' follows the uplink (1500 without one). */
  mtu: number | 'auto';
  /** Uplink device; 'auto' is the default route's device. */
  uplink: string;
  /** This node's pod block; empty until the node leases one (first block of the pool by default). */
  podCIDR: string;
  /** The link-local gateway address pods route through. */
  gatewayIP: string;
  /** Where cluster state lives: `file` (default, one node), `file:/dir` or `etcd://host:port[,…][/prefix]`. */
  store: string;
  /** etcds:// only: the CA that signed etcd's certificate (PEM path; empty: the system's CAs). */
  storeCA: string;
  /** etcds:// only: this node's client certificate and its key (PEM paths; empty: none). */
  storeCert: string;
  storeKey: string;
  /** host:port of the agent's Prometheus endpoint, or `off`. */
  metricsAddress: string;
  /** How pods reach pods on other nodes: VXLAN overlay, direct routing, or direct within the node's subnet and VXLAN beyond. */
  mode: Mode;
  /**
   * The network namespace the node lives in (a path such as /run/netns/n1), or empty for
   * any: set, a command refuses to run in another namespace, whose routes would send what
   * is meant for the node's network (its store, its agents) somewhere else.
   */
  nodeNetns: string;
  /** Pods' packets to the world leave with the node's address (docs/architecture.md, "Masquerade (SNAT)"). */
  masquerade: boolean;
  /**
   * Destinations pods reach with their own address, comma-separated CIDRs ('' : the cluster
   * pool). The pool, the nodes and the cluster's addresses are never masqueraded whatever this says.
   */
  nonMasqueradeCIDRs: string;
  /** The address pods' packets leave with ('' : the uplink's). */
  masqueradeAddress: string;
  /** The source ports masquerade uses, "min-max" (disjoint from the kernel's ephemeral ports). */
  masqueradePortRange: string;
  /** The pool services' clusterIPs are allocated from (docs/architecture.md, "Services"): disjoint from clusterCIDR. */
  serviceCIDR: string;
  /** The ports NodePort services get, "min-max" (disjoint from masqueradePortRange, without the overlay's port). */
  nodePortRange: string;
}

export const MODES = ['vxlan', 'direct', 'hybrid'] as const;
export type Mode = (typeof MODES)[number];

export const DEFAULTS: Omit<Config, 'nodeName'> = {
  pinRoot: '/sys/fs/bpf/sluice',
  stateDir: '/var/lib/sluice',
  runDir: '/run/sluice',
  clusterCIDR: '10.244.0.0/16',
  blockSize: 24,
  mtu: 'auto',
  uplink: 'auto',
  podCIDR: '',
  gatewayIP: '169.254.1.1',
  store: 'file',
  storeCA: '',
  storeCert: '',
  storeKey: '',
  metricsAddress: '127.0.0.1:9962',
  mode: 'vxlan',
  nodeNetns: '',
  masquerade: true,
  nonMasqueradeCIDRs: '',
  masqueradeAddress: '',
  masqueradePortRange: '61000-65535',
  serviceCIDR: '10.96.0.0/12',
  nodePortRange: '30000-32767',
};

export const DEFAULT_CONFIG_PATH = '/etc/sluice/config.yaml';
/** The environment variable that names the config file when --config is not given (`sluice lab exec --node` sets it). */
export const CONFIG_ENV = 'SLUICE_CONFIG';

/** Each key with its flag and a one-line description (used for --help and docs). */
export const KEYS: Record<keyof Config, { flag: string; help: string }> = {
  nodeName: { flag: '--node-name', help: 'node name (default: hostname)' },
  pinRoot: { flag: '--pin-root', help: `bpffs directory for maps, programs and links (default ${DEFAULTS.pinRoot})` },
  stateDir: { flag: '--state-dir', help: `state directory (default ${DEFAULTS.stateDir})` },
  runDir: { flag: '--run-dir', help: `runtime directory for sockets and locks (default ${DEFAULTS.runDir})` },
  clusterCIDR: { flag: '--cluster-cidr', help: `cluster pod pool (default ${DEFAULTS.clusterCIDR})` },
  blockSize: { flag: '--block-size', help: `prefix length of a node's pod block (default ${DEFAULTS.blockSize})` },
  mtu: { flag: '--mtu', help: 'pod MTU, or auto (the uplink MTU)' },
  uplink: { flag: '--uplink', help: "uplink device, or auto (the default route's device)" },
  podCIDR: { flag: '--pod-cidr', help: "this node's pod block (default: the first block of the pool)" },
  gatewayIP: { flag: '--gateway-ip', help: `link-local gateway of every pod (default ${DEFAULTS.gatewayIP})` },
  store: { flag: '--store', help: 'cluster state: file (default), file:/dir, etcd://host:port[,host:port…][/prefix], or etcds://… for TLS' },
  storeCA: { flag: '--store-ca', help: "etcds:// only: PEM file of the CA that signed etcd's certificate (default: the system's CAs)" },
  storeCert: { flag: '--store-cert', help: "etcds:// only: PEM file of this node's client certificate (with --store-key)" },
  storeKey: { flag: '--store-key', help: 'etcds:// only: PEM file of the client certificate\'s private key (with --store-cert)' },
  metricsAddress: { flag: '--metrics-address', help: `agent's Prometheus endpoint host:port, or off (default ${DEFAULTS.metricsAddress})` },
  mode: { flag: '--mode', help: 'cross-node forwarding: vxlan (default), direct or hybrid' },
  nodeNetns: { flag: '--node-netns', help: 'the network namespace (path) the node lives in: commands refuse to run elsewhere (default: any)' },
  masquerade: { flag: '--masquerade', help: "true (default) or false: pods' packets to the world leave with the node's address" },
  nonMasqueradeCIDRs: { flag: '--non-masquerade-cidrs', help: 'CIDRs (comma-separated; a YAML list in the file) pods reach with their own address (default: the cluster pool)' },
  masqueradeAddress: { flag: '--masquerade-address', help: "the address pods' packets leave with (default: the uplink's)" },
  masqueradePortRange: { flag: '--masquerade-port-range', help: `source ports of masqueraded flows, min-max (default ${DEFAULTS.masqueradePortRange})` },
  serviceCIDR: { flag: '--service-cidr', help: `the pool of services' clusterIPs, disjoint from the pod pool (default ${DEFAULTS.serviceCIDR})` },
  nodePortRange: { flag: '--node-port-range', help: `ports of NodePort services, min-max (default ${DEFAULTS.nodePortRange})` },
};

export class ConfigError extends Error {
  constructor(source: string, key: string, problem: string) {
    super(`${source}: ${key}: ${problem}`);
    this.name = 'ConfigError';
  }
}

/** Parses the YAML text of a config file into raw key/values (validated later). */
export function parseConfigText(text: string, source: string): Record<string, unknown> {
  let doc: unknown;
  try {
    doc = parseYaml(text, { prettyErrors: true });
  } catch (e) {
    throw new ConfigError(source, '(file)', `not valid YAML: ${((e as Error).message.split('\n')[0] ?? '').replace(/:\s*$/, '')}`);
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new ConfigError(source, '(file)', 'expected a mapping of keys to values');
  return doc as Record<string, unknown>;
}

function str(source: string, key: string, v: unknown): string {
  if (typeof v !== 'string' || v.trim() === '') throw new ConfigError(source, key, `expected a non-empty string, got ${JSON.stringify(v)}`);
  return v.trim();
}

function int(source: string, key: string, v: unknown, min: number, max: number): number {
  const n = typeof v === 'string' && /^\d+$/.test(v.trim()) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) {
    throw new ConfigError(source, key, `expected an integer from ${min} to ${max}, got ${JSON.stringify(v)}`);
  }
  return n;
}

function absPath(source: string, key: string, v: unknown): string {
  const s = str(source, key, v);
  if (!isAbsolute(s)) throw new ConfigError(source, key, `expected an absolute path, got '${s}'`);
  return s.replace(/\/+$/, '') || '/';
}

/** An absolute path, or '' (not set). */
function optPath(source: string, key: string, v: unknown): string {
  return v === '' ? '' : absPath(source, key, v);
}

const IFNAME = /^[A-Za-z0-9_.-]{1,15}$/;

/**
 * Merges defaults < file < flags and validates every key. `file` and `flags` map
 * config keys to raw values; unknown keys in the file are an error (a typo would
 * otherwise be ignored silently).
 */
export function resolveConfig(file: Record<string, unknown>, flags: Partial<Record<keyof Config, unknown>>, fileSource = 'config'): Config {
  for (const k of Object.keys(file)) {
    if (!(k in KEYS)) throw new ConfigError(fileSource, k, `unknown key (known: ${Object.keys(KEYS).join(', ')})`);
  }
  const raw: Record<string, unknown> = { nodeName: hostname(), ...DEFAULTS };
  const sourceOf: Record<string, string> = {};
  for (const [k, v] of Object.entries(file)) if (v !== undefined && v !== null) { raw[k] = v; sourceOf[k] = fileSource; }
  for (const [k, v] of Object.entries(flags)) if (v !== undefined) { raw[k] = v; sourceOf[k] = `flag ${KEYS[k as keyof Config].flag}`; }
  const src = (k: string) => sourceOf[k] ?? 'default';

  const cfg: Config = {
    nodeName: str(src('nodeName'), 'nodeName', raw.nodeName),
    pinRoot: absPath(src('pinRoot'), 'pinRoot', raw.pinRoot),
    stateDir: absPath(src('stateDir'), 'stateDir', raw.stateDir),
    runDir: absPath(src('runDir'), 'runDir', raw.runDir),
    clusterCIDR: str(src('clusterCIDR'), 'clusterCIDR', raw.clusterCIDR),
    blockSize: int(src('blockSize'), 'blockSize', raw.blockSize, 1, 32),
    mtu: raw.mtu === 'auto' ? 'auto' : int(src('mtu'), 'mtu', raw.mtu, 576, 65535),
    uplink: str(src('uplink'), 'uplink', raw.uplink),
    podCIDR: raw.podCIDR === '' ? '' : str(src('podCIDR'), 'podCIDR', raw.podCIDR),
    gatewayIP: str(src('gatewayIP'), 'gatewayIP', raw.gatewayIP),
    store: str(src('store'), 'store', raw.store),
    storeCA: optPath(src('storeCA'), 'storeCA', raw.storeCA),
    storeCert: optPath(src('storeCert'), 'storeCert', raw.storeCert),
    storeKey: optPath(src('storeKey'), 'storeKey', raw.storeKey),
    metricsAddress: str(src('metricsAddress'), 'metricsAddress', raw.metricsAddress),
    mode: raw.mode as Mode,
    nodeNetns: raw.nodeNetns === '' ? '' : absPath(src('nodeNetns'), 'nodeNetns', raw.nodeNetns),
    masquerade: bool(src('masquerade'), 'masquerade', raw.masquerade),
    nonMasqueradeCIDRs: cidrList(src('nonMasqueradeCIDRs'), 'nonMasqueradeCIDRs', raw.nonMasqueradeCIDRs),
    masqueradeAddress: raw.masqueradeAddress === '' ? '' : str(src('masqueradeAddress'), 'masqueradeAddress', raw.masqueradeAddress),
    masqueradePortRange: str(src('masqueradePortRange'), 'masqueradePortRange', raw.masqueradePortRange),
    serviceCIDR: str(src('serviceCIDR'), 'serviceCIDR', raw.serviceCIDR),
    nodePortRange: str(src('nodePortRange'), 'nodePortRange', raw.nodePortRange),
  };
  if (!MODES.includes(cfg.mode)) throw new ConfigError(src('mode'), 'mode', `expected one of ${MODES.join(', ')}, got ${JSON.stringify(raw.mode)}`);
  if (!/^[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$/.test(cfg.nodeName)) {
    throw new ConfigError(src('nodeName'), 'nodeName', `'${cfg.nodeName}' is not a valid node name (letters, digits, '.', '-', '_'; at most 63)`);
  }
  if (!cfg.pinRoot.startsWith('/sys/fs/bpf')) {
    throw new ConfigError(src('pinRoot'), 'pinRoot', `'${cfg.pinRoot}' is not under /sys/fs/bpf`);
  }
  let pool;
  try {
    pool = parseCidr(cfg.clusterCIDR);
  } catch (e) {
    throw new ConfigError(src('clusterCIDR'), 'clusterCIDR', (e as Error).message);
  }
  if (cfg.blockSize < pool.prefix) {
    throw new ConfigError(src('blockSize'), 'blockSize', `/${cfg.blockSize} blocks do not fit in the pool ${cfg.clusterCIDR}`);
  }
  if (cfg.blockSize > 30) throw new ConfigError(src('blockSize'), 'blockSize', `/${cfg.blockSize} leaves no room for pods: use /30 or larger`);
  if (cfg.podCIDR) {
    let block;
    try {
      block = parseCidr(cfg.podCIDR);
    } catch (e) {
      throw new ConfigError(src('podCIDR'), 'podCIDR', (e as Error).message);
    }
    if (block.prefix !== cfg.blockSize || !cidrWithin(block, pool)) {
      throw new ConfigError(src('podCIDR'), 'podCIDR', `${cfg.podCIDR} is not a /${cfg.blockSize} block of ${formatCidr(pool)}`);
    }
  }
  if (cfg.uplink !== 'auto' && !IFNAME.test(cfg.uplink)) {
    throw new ConfigError(src('uplink'), 'uplink', `'${cfg.uplink}' is not a device name`);
  }
  if (!isIPv4(cfg.gatewayIP)) throw new ConfigError(src('gatewayIP'), 'gatewayIP', `'${cfg.gatewayIP}' is not an IPv4 address`);
  const gw = parseIPv4(cfg.gatewayIP);
  if (gw >>> 16 !== 0xa9fe) throw new ConfigError(src('gatewayIP'), 'gatewayIP', `${cfg.gatewayIP} is not link-local (169.254.0.0/16)`);
  let spec;
  try {
    spec = parseStoreSpec(cfg.store);
  } catch (e) {
    throw new ConfigError(src('store'), 'store', (e as Error).message);
  }
  const tls = tlsProblem(spec.kind === 'etcd' && spec.tls, storeTls(cfg));
  if (tls) throw new ConfigError(src(tls.key), tls.key, tls.problem);
  if (cfg.masqueradeAddress && !isIPv4(cfg.masqueradeAddress)) {
    throw new ConfigError(src('masqueradeAddress'), 'masqueradeAddress', `'${cfg.masqueradeAddress}' is not an IPv4 address`);
  }
  const range = portRangeProblem(cfg.masqueradePortRange);
  if (range) throw new ConfigError(src('masqueradePortRange'), 'masqueradePortRange', range);
  const svc = serviceCidrProblem(cfg.serviceCIDR, pool, gw);
  if (svc) throw new ConfigError(src('serviceCIDR'), 'serviceCIDR', svc);
  const np = portRangeProblem(cfg.nodePortRange, 1, '30000-32767');
  if (np) throw new ConfigError(src('nodePortRange'), 'nodePortRange', np);
  const nodePort = nodePorts(cfg);
  const masq = masqueradePorts(cfg);
  if (nodePort.min <= masq.max && masq.min <= nodePort.max) {
    // Blamed on the key that was set (both at their defaults never overlap).
    if (sourceOf.nodePortRange === undefined && sourceOf.masqueradePortRange !== undefined) {
      throw new ConfigError(src('masqueradePortRange'), 'masqueradePortRange', `${cfg.masqueradePortRange} overlaps nodePortRange ${cfg.nodePortRange}`);
    }
    throw new ConfigError(src('nodePortRange'), 'nodePortRange', `${cfg.nodePortRange} overlaps masqueradePortRange ${cfg.masqueradePortRange}`);
  }
  if (VXLAN_PORT >= nodePort.min && VXLAN_PORT <= nodePort.max) {
    throw new ConfigError(src('nodePortRange'), 'nodePortRange', `${cfg.nodePortRange} holds the overlay's port ${VXLAN_PORT} (UDP)`);
  }
  if (cfg.metricsAddress !== 'off') {
    const problem = hostPortProblem(cfg.metricsAddress);
    if (problem) throw new ConfigError(src('metricsAddress'), 'metricsAddress', problem);
  }
  return cfg;
}

function bool(source: string, key: string, v: unknown): boolean {
  if (v === true || v === 'true') return true;
  if (v === false || v === 'false') return false;
  throw new ConfigError(source, key, `expected true or false, got ${JSON.stringify(v)}`);
}

/** A list of IPv4 CIDRs (a YAML list, or comma-separated text), checked and normalized to "a/n,b/m"; '' stays ''. */
function cidrList(source: string, key: string, v: unknown): string {
  const items = Array.isArray(v) ? v : typeof v === 'string' ? (v.trim() === '' ? [] : v.split(',')) : undefined;
  if (!items) throw new ConfigError(source, key, `expected a list of CIDRs, got ${JSON.stringify(v)}`);
  const out: string[] = [];
  for (const item of items) {
    if (typeof item !== 'string' || item.trim() === '') throw new ConfigError(source, key, `expected a CIDR, got ${JSON.stringify(item)}`);
    try {
      out.push(formatCidr(parseCidr(item.trim())));
    } catch (e) {
      throw new ConfigError(source, key, `'${item.trim()}': ${(e as Error).message}`);
    }
  }
  return out.join(',');
}

/** A port range "min-max" (min ≤ max ≤ 65535; 1024 ≤ min for masquerade, 1 ≤ min for NodePorts). */
export interface PortRange { min: number; max: number }

/** Why `s` is not a port range "min-max" sluice can use (within `floor`-65535), or undefined. */
export function portRangeProblem(s: string, floor = 1024, example = '61000-65535'): string | undefined {
  const m = /^(\d{1,5})-(\d{1,5})$/.exec(s);
  if (!m) return `'${s}' is not a port range min-max (for example ${example})`;
  const min = Number(m[1]);
  const max = Number(m[2]);
  if (min < floor || max > 65535) return `${s} is not within ${floor}-65535`;
  if (min > max) return `${s} is empty (${min} > ${max})`;
  return undefined;
}

/** The masquerade port range of a config (validated by resolveConfig). */
export function masqueradePorts(cfg: Pick<Config, 'masqueradePortRange'>): PortRange {
  const [min, max] = cfg.masqueradePortRange.split('-').map(Number);
  return { min: min!, max: max! };
}

/** The NodePort range of a config (validated by resolveConfig). */
export function nodePorts(cfg: Pick<Config, 'nodePortRange'>): PortRange {
  const [min, max] = cfg.nodePortRange.split('-').map(Number);
  return { min: min!, max: max! };
}

/**
 * Why `s` is not a service pool sluice can use, or undefined: an IPv4 CIDR of at least 8
 * addresses (its network, broadcast and first addresses are never allocated), disjoint from
 * the pod pool, without the pods' gateway address.
 */
export function serviceCidrProblem(s: string, pool: Cidr, gateway: Ipv4): string | undefined {
  let c;
  try {
    c = parseCidr(s);
  } catch (e) {
    return (e as Error).message;
  }
  if (c.prefix > 29) return `${s} is too small: give a /29 or larger`;
  if (cidrOverlaps(c, pool)) return `${s} overlaps clusterCIDR ${formatCidr(pool)}`;
  if (cidrContains(c, gateway)) return `${s} holds the pods' gateway address`;
  return undefined;
}

/** The destinations never masqueraded: nonMasqueradeCIDRs, or the cluster pool when it is not set. */
export function nonMasqueradeCidrs(cfg: Pick<Config, 'nonMasqueradeCIDRs' | 'clusterCIDR'>): string[] {
  return cfg.nonMasqueradeCIDRs ? cfg.nonMasqueradeCIDRs.split(',') : [cfg.clusterCIDR];
}

/** The store's TLS files of a config (for openStore). */
export function storeTls(cfg: Pick<Config, 'storeCA' | 'storeCert' | 'storeKey'>): StoreTlsFiles {
  return { ...(cfg.storeCA ? { ca: cfg.storeCA } : {}), ...(cfg.storeCert ? { cert: cfg.storeCert } : {}), ...(cfg.storeKey ? { key: cfg.storeKey } : {}) };
}

/** Why `s` is not `host:port` (IPv4 address or name, port 0-65535), or undefined. */
export function hostPortProblem(s: string): string | undefined {
  const m = /^(.+):(\d{1,5})$/.exec(s);
  if (!m || Number(m[2]) > 65535) return `'${s}' is not host:port (for example 127.0.0.1:9962), nor off`;
  const host = m[1]!;
  if (/^[\d.]+$/.test(host) ? !isIPv4(host) : !/^[A-Za-z0-9.-]+$/.test(host)) return `'${host}' in '${s}' is not an IPv4 address or host name`;
  return undefined;
}
