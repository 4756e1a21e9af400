/**
 * The lab's plan: every name, address, path and command line `lab up` will create,
 * derived from the topology and the lab's name alone. Pure: nothing is read or made.
 *
 *   <LAB>-underlay                 the simulated physical network: one bridge per subnet
 *                                  (br0, br1…), etcd on <subnet 0>.250 when the store is etcd,
 *                                  over TLS with client certificates (<dir>/pki: a CA made at
 *                                  `lab up`, etcd's certificate, one client certificate per
 *                                  node and one for the lab's own use)
 *   <LAB>-router                   with two or more subnets: r<i> = <subnet i>.254 in each,
 *                                  ip_forward=1
 *   <LAB>-<node>                   a node: uplink0 (<subnet>.<k>/24) whose peer nd<i> is in
 *                                  its subnet's bridge; the node's agent runs here;
 *                                  ip_forward=1 (pods' traffic to addresses outside the
 *                                  cluster goes through the node's stack)
 *   <LAB>-<node>.<ns>.<pod>        a pod, added through its node's agent
 *   <LAB>-x.<name>                 a host outside the cluster: eth0 (<subnet>.201…240/24) in
 *                                  its subnet's bridge, default route via the router (when
 *                                  there is one), no route to any pod block
 */
import { join } from 'node:path';
import { formatIPv4, ipv4Add, parseCidr } from '../util/ipv4.js';
import type { LabPod, StoreKind, Topology } from './topology.js';
import type { Labels } from '../util/labels.js';
import type { PodPort } from '../endpoint/ports.js';

export const DEFAULT_LAB = 'sllab';
export const DEFAULT_LAB_ROOT = '/var/lib/sluice-lab';
export const UPLINK = 'uplink0';
export const ETCD_CLIENT_PORT = 2379;
export const ETCD_PEER_PORT = 2380;
/**
 * Set in the underlay namespace: its bridges are the switch between the nodes, and a switch
 * does not filter. New namespaces start with br_netfilter's hooks on (when the kernel has
 * it), which would run every packet between two nodes through netfilter: a cost no real
 * underlay has, and one the benchmark's baselines do not pay either. Written with
 * `sysctl -e`: a kernel without br_netfilter has no such keys and no hooks to turn off.
 */
export const UNDERLAY_SYSCTLS = [
  'net.bridge.bridge-nf-call-iptables=0', 'net.bridge.bridge-nf-call-ip6tables=0', 'net.bridge.bridge-nf-call-arptables=0',
] as const;
/** sun_path holds 108 bytes, the terminating NUL included. */
export const MAX_SOCKET_PATH = 107;

export interface SubnetPlan {
  name: string;
  index: number;
  /** The subnet's /24 on the underlay. */
  cidr: string;
  /** The Linux bridge of the subnet, in the underlay namespace. */
  bridge: string;
  /** The router's address in this subnet (when there is a router). */
  router?: string;
  /** The router's device in this subnet (in the router namespace) and its peer in the bridge. */
  routerIf?: string;
  routerPeer?: string;
}

export interface NodePlan {
  name: string;
  subnet: string;
  netns: string;
  netnsPath: string;
  /** The node's uplink address (on uplink0), without prefix. */
  underlayIP: string;
  /** uplink0's peer, in the subnet's bridge. */
  bridgePort: string;
  bridge: string;
  /** The default route of the node (its subnet's router), when there is a router. */
  defaultVia?: string;
  dir: string;
  config: string;
  configText: string;
  pinRoot: string;
  stateDir: string;
  runDir: string;
  socket: string;
  log: string;
  /** The agent's command line, as spawned (through nsenter). */
  agentArgv: string[];
  /** The node's TLS files for the store (etcd store only). */
  storeTls?: ClientTls;
}

export interface ExternalPlan {
  name: string;
  subnet: string;
  netns: string;
  netnsPath: string;
  /** Its address on eth0, without prefix. */
  ip: string;
  /** eth0's peer, in the subnet's bridge. */
  bridgePort: string;
  bridge: string;
  /** Its default route (its subnet's router), when there is a router. */
  defaultVia?: string;
}

/** The outside host's device. */
export const EXTERNAL_DEV = 'eth0';

export interface PodPlan {
  /** NS/NAME */
  ref: string;
  namespace: string;
  name: string;
  node: string;
  netns: string;
  netnsPath: string;
  containerId: string;
  labels: Labels;
  ports: PodPort[];
}

/** The lab's certificates (made by `lab up` with openssl: certs.ts). */
export interface PkiPlan {
  dir: string;
  /** The CA every node trusts, and that etcd checks client certificates against. */
  ca: string;
  /** etcd's certificate (names its address and 127.0.0.1) and key. */
  serverCert: string;
  serverKey: string;
  /** The lab's own client certificate (its health checks; etcdctl in tests). */
  labCert: string;
  labKey: string;
}

/** A client certificate and key of the lab's etcd. */
export interface ClientTls {
  ca: string;
  cert: string;
  key: string;
}

export interface EtcdPlan {
  address: string;
  clientPort: number;
  peerPort: number;
  dir: string;
  dataDir: string;
  log: string;
  argv: string[];
  pki: PkiPlan;
}

export interface Plan {
  lab: string;
  dir: string;
  stateFile: string;
  lockFile: string;
  /** /sys/fs/bpf/<LAB>: every node's pin root is below it. */
  pinRoot: string;
  mode: Topology['mode'];
  store: StoreKind;
  /** The store spec every node's config names. */
  storeSpec: string;
  /** The shared file store's directory (store file). */
  storeDir?: string;
  underlayNetns: string;
  routerNetns?: string;
  /** The underlay namespace's own address (etcd's), and its default route (via the router). */
  underlayAddress?: string;
  underlayDefaultVia?: string;
  subnets: SubnetPlan[];
  nodes: NodePlan[];
  pods: PodPlan[];
  external: ExternalPlan[];
  etcd?: EtcdPlan;
  topology: Topology;
}

export interface PlanTools {
  /** The node executable that runs the agents. */
  node: string;
  /** bin/sluice.js of this checkout. */
  sluice: string;
  etcd: string;
}

export interface PlanOptions {
  /** Test only: this node's config names an uplink that does not exist, so its agent fails to start. */
  badConfigNode?: string;
}

export const netnsPathOf = (name: string) => `/run/netns/${name}`;
export const podNetnsName = (lab: string, p: Pick<LabPod, 'node' | 'namespace' | 'name'>) => `${lab}-${p.node}.${p.namespace}.${p.name}`;

export function makePlan(topo: Topology, lab: string, root: string, tools: PlanTools, o: PlanOptions = {}): Plan {
  const dir = join(root, lab);
  const underlay = parseCidr(topo.underlay);
  const subnetNames = [...new Set([...topo.nodes.map((n) => n.subnet), ...topo.external.map((x) => x.subnet)])];
  const routed = subnetNames.length > 1;
  const subnets: SubnetPlan[] = subnetNames.map((name, index) => {
    const base = ipv4Add(underlay.base, index * 256);
    return {
      name, index, cidr: `${formatIPv4(base)}/24`, bridge: `br${index}`,
      ...(routed ? { router: formatIPv4(ipv4Add(base, 254)), routerIf: `r${index}`, routerPeer: `rt${index}` } : {}),
    };
  });
  const subnetOf = (name: string) => subnets.find((s) => s.name === name)!;
  const etcdAddress = topo.store === 'etcd' ? formatIPv4(ipv4Add(underlay.base, 250)) : undefined;
  const storeDir = topo.store === 'file' ? join(dir, 'store') : undefined;
  const storeSpec = storeDir ? `file:${storeDir}` : `etcds://${etcdAddress}:${ETCD_CLIENT_PORT}/${lab}/`;
  const pkiDir = join(dir, 'pki');
  const pki: PkiPlan | undefined = etcdAddress ? {
    dir: pkiDir, ca: join(pkiDir, 'ca.pem'), serverCert: join(pkiDir, 'etcd.pem'), serverKey: join(pkiDir, 'etcd-key.pem'),
    labCert: join(pkiDir, 'lab.pem'), labKey: join(pkiDir, 'lab-key.pem'),
  } : undefined;
  // Node certificates are named after the node (node names are unique, and never "etcd" or "lab").
  const clientTls = (node: string): ClientTls | undefined =>
    pki && { ca: pki.ca, cert: join(pkiDir, `node-${node}.pem`), key: join(pkiDir, `node-${node}-key.pem`) };
  const pinRoot = `/sys/fs/bpf/${lab}`;

  const perSubnet = new Map<string, number>();
  const nodes: NodePlan[] = topo.nodes.map((n, i) => {
    const s = subnetOf(n.subnet);
    const k = (perSubnet.get(s.name) ?? 0) + 1;
    perSubnet.set(s.name, k);
    const netns = `${lab}-${n.name}`;
    const ndir = join(dir, 'nodes', n.name);
    const tls = clientTls(n.name);
    const cfg = {
      nodeName: n.name,
      pinRoot: join(pinRoot, n.name),
      stateDir: join(ndir, 'state'),
      runDir: join(ndir, 'run'),
      store: storeSpec,
      ...(tls ? { storeCA: tls.ca, storeCert: tls.cert, storeKey: tls.key } : {}),
      mode: topo.mode,
      uplink: o.badConfigNode === n.name ? 'slnouplink0' : UPLINK,
      metricsAddress: '127.0.0.1:9962',
      clusterCIDR: topo.clusterCIDR,
      blockSize: topo.blockSize,
      // The CLI refuses this config outside the node's namespace: from the root namespace
      // the lab's addresses are reached through the machine's own default route.
      nodeNetns: netnsPathOf(netns),
    };
    const config = join(ndir, 'config.yaml');
    const socket = join(cfg.runDir, 'agent.sock');
    if (socket.length > MAX_SOCKET_PATH) {
      throw new Error(`node ${n.name}: the agent socket ${socket} is longer than ${MAX_SOCKET_PATH} bytes: use a shorter lab or node name, or a shorter SLUICE_LAB_ROOT`);
    }
    return {
      name: n.name, subnet: s.name, netns, netnsPath: netnsPathOf(netns),
      underlayIP: formatIPv4(ipv4Add(parseCidr(s.cidr).base, k)), bridgePort: `nd${i}`, bridge: s.bridge,
      ...(s.router ? { defaultVia: s.router } : {}),
      dir: ndir, config,
      configText: `# sluice lab ${lab}: node ${n.name} (written by \`sluice lab up\`)\n${Object.entries(cfg).map(([key, v]) => `${key}: ${v}`).join('\n')}\n`,
      pinRoot: cfg.pinRoot, stateDir: cfg.stateDir, runDir: cfg.runDir, socket,
      log: join(ndir, 'agent.log'),
      agentArgv: ['nsenter', `--net=${netnsPathOf(netns)}`, tools.node, tools.sluice, '--config', config, 'agent'],
      ...(tls ? { storeTls: tls } : {}),
    };
  });

  const pods: PodPlan[] = topo.pods.map((p) => {
    const netns = podNetnsName(lab, p);
    return {
      ref: `${p.namespace}/${p.name}`, namespace: p.namespace, name: p.name, node: p.node, netns, netnsPath: netnsPathOf(netns),
      containerId: `${lab}.${p.namespace}.${p.name}`, labels: p.labels, ports: p.ports,
    };
  });

  const perSubnetX = new Map<string, number>();
  const external: ExternalPlan[] = topo.external.map((x, i) => {
    const s = subnetOf(x.subnet);
    const k = perSubnetX.get(s.name) ?? 0;
    perSubnetX.set(s.name, k + 1);
    const netns = `${lab}-x.${x.name}`;
    return {
      name: x.name, subnet: s.name, netns, netnsPath: netnsPathOf(netns), ip: formatIPv4(ipv4Add(parseCidr(s.cidr).base, 201 + k)),
      bridgePort: `nx${i}`, bridge: s.bridge, ...(s.router ? { defaultVia: s.router } : {}),
    };
  });

  const underlayNetns = `${lab}-underlay`;
  let etcd: EtcdPlan | undefined;
  if (etcdAddress && pki) {
    const edir = join(dir, 'etcd');
    const peer = `http://127.0.0.1:${ETCD_PEER_PORT}`;
    etcd = {
      address: etcdAddress, clientPort: ETCD_CLIENT_PORT, peerPort: ETCD_PEER_PORT, dir: edir, dataDir: join(edir, 'data'), log: join(edir, 'etcd.log'),
      argv: [
        'nsenter', `--net=${netnsPathOf(underlayNetns)}`, tools.etcd,
        '--name', lab, '--data-dir', join(edir, 'data'),
        '--listen-client-urls', `https://${etcdAddress}:${ETCD_CLIENT_PORT},https://127.0.0.1:${ETCD_CLIENT_PORT}`,
        '--advertise-client-urls', `https://${etcdAddress}:${ETCD_CLIENT_PORT}`,
        '--cert-file', pki.serverCert, '--key-file', pki.serverKey, '--trusted-ca-file', pki.ca, '--client-cert-auth',
        '--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer,
        '--initial-cluster', `${lab}=${peer}`, '--initial-cluster-state', 'new', '--initial-cluster-token', `sluice-lab-${lab}`,
        '--logger', 'zap', '--log-outputs', 'stderr', '--log-level', 'warn',
      ],
      pki,
    };
  }
  return {
    lab, dir, stateFile: join(dir, 'lab.json'), lockFile: join(dir, 'lab.lock'), pinRoot,
    mode: topo.mode, store: topo.store, storeSpec, ...(storeDir ? { storeDir } : {}),
    underlayNetns, ...(routed ? { routerNetns: `${lab}-router` } : {}),
    ...(etcdAddress ? { underlayAddress: etcdAddress, ...(routed ? { underlayDefaultVia: subnets[0]!.router! } : {}) } : {}),
    subnets, nodes, pods, external, ...(etcd ? { etcd } : {}), topology: topo,
  };
}

/** Every network namespace of the plan, in the order up creates them. */
export function planNetns(p: Plan): string[] {
  return [p.underlayNetns, ...(p.routerNetns ? [p.routerNetns] : []), ...p.nodes.map((n) => n.netns), ...p.external.map((x) => x.netns), ...p.pods.map((x) => x.netns)];
}

/** The `ip -batch` lines of the underlay, the router and each node's uplink (run in the namespace named by each key). */
export function underlayCommands(p: Plan): { netns: string; lines: string[] }[] {
  const out: { netns: string; lines: string[] }[] = [];
  const u: string[] = ['link set lo up'];
  for (const s of p.subnets) u.push(`link add ${s.bridge} type bridge`, `link set ${s.bridge} up`);
  if (p.underlayAddress) u.push(`addr add ${p.underlayAddress}/24 dev ${p.subnets[0]!.bridge}`);
  out.push({ netns: p.underlayNetns, lines: u });
  if (p.routerNetns) {
    const r: string[] = [];
    const inUnderlay: string[] = [];
    for (const s of p.subnets) {
      inUnderlay.push(`link add ${s.routerPeer} type veth peer name ${s.routerIf} netns ${p.routerNetns}`,
        `link set ${s.routerPeer} master ${s.bridge}`, `link set ${s.routerPeer} up`);
      r.push(`addr add ${s.router}/24 dev ${s.routerIf}`, `link set ${s.routerIf} up`);
    }
    out.push({ netns: p.underlayNetns, lines: inUnderlay });
    out.push({ netns: p.routerNetns, lines: ['link set lo up', ...r] });
    if (p.underlayDefaultVia) out.push({ netns: p.underlayNetns, lines: [`route add default via ${p.underlayDefaultVia}`] });
  }
  return out;
}

/** The lines that give node `n` its uplink (run in the underlay namespace, then in the node's). */
export function nodeUplinkCommands(p: Plan, n: NodePlan): { underlay: string[]; node: string[] } {
  return {
    underlay: [`link add ${n.bridgePort} type veth peer name ${UPLINK} netns ${n.netns}`, `link set ${n.bridgePort} master ${n.bridge}`, `link set ${n.bridgePort} up`],
    node: ['link set lo up', `addr add ${n.underlayIP}/24 dev ${UPLINK}`, `link set ${UPLINK} up`, ...(n.defaultVia ? [`route add default via ${n.defaultVia}`] : [])],
  };
}

/** The lines that put outside host `x` on its subnet (run in the underlay namespace, then in the host's). */
export function externalCommands(x: ExternalPlan): { underlay: string[]; host: string[] } {
  return {
    underlay: [`link add ${x.bridgePort} type veth peer name ${EXTERNAL_DEV} netns ${x.netns}`, `link set ${x.bridgePort} master ${x.bridge}`, `link set ${x.bridgePort} up`],
    host: ['link set lo up', `addr add ${x.ip}/24 dev ${EXTERNAL_DEV}`, `link set ${EXTERNAL_DEV} up`, ...(x.defaultVia ? [`route add default via ${x.defaultVia}`] : [])],
  };
}
