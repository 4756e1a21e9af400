import type { Command } from 'commander';
import { buildAll } from '../../datapath/build.js';
import { datapathMapLayouts } from '../../datapath/layouts.js';
import { endpointRows, ipcacheRows, nodesRows, prefilterRows, readCtRows, readNatRows, readPolicyRows, readServiceRows } from '../../inspect/listings.js';
import { Names } from '../../inspect/names.js';
import { readMetrics } from '../../maps/metrics.js';
import { listLinks } from '../../net/ip.js';
import { openStore } from '../../store/open.js';
import { parseRecords } from '../../store/record.js';
import { NODES } from '../../store/keys.js';
import { parseNodeRecord } from '../../node/underlay.js';
import { storeTls, type Config } from '../../config/config.js';
import { configOf } from '../context.js';
import { parseOutput, print } from '../output.js';

function listCommand(parent: Command, name: string, description: string, action: (cmd: Command, format: 'table' | 'json') => void | Promise<void>): void {
  const c = parent.command(name).description(description);
  c.command('list', { isDefault: true })
    .description(description)
    .option('-o, --output <format>', 'table or json', parseOutput, 'table')
    .action(async function (this: Command) {
      await action(this, this.opts().output);
    });
}

/** Names for identities, policies and endpoints (the store is read, never written). */
async function mapNames(cfg: Config): Promise<Names> {
  const store = await openStore(cfg.store, { stateDir: cfg.stateDir, tls: storeTls(cfg) });
  try {
    return await Names.load(cfg, store);
  } finally {
    await store.close();
  }
}

export function register(program: Command): void {
  const bpf = program.command('bpf').description('the eBPF datapath: build it and read its maps');
  bpf.command('build')
    .description('compile the C programs (cached by content hash; an unchanged program is not rebuilt)')
    .option('-o, --output <format>', 'table or json', parseOutput, 'table')
    .action(function (this: Command) {
      print(this.opts().output, buildAll(), {
        PROGRAM: (r) => r.program, HASH: (r) => r.hash, BUILD: (r) => (r.cached ? 'cached' : 'compiled'), OBJECT: (r) => r.object,
      });
    });

  listCommand(bpf, 'layouts', "every map of this build with its layout (name suffix _vN: layout N), key and value fields at their offsets, as the objects' BTF declares them", (_cmd, format) => {
    print(format, datapathMapLayouts(), {
      MAP: (r) => r.name, LAYOUT: (r) => r.version, FAMILY: (r) => (r.family === 'any' ? '-' : `ipv${r.family}`), TYPE: (r) => r.type, ENTRIES: (r) => r.maxEntries,
      KEY: (r) => r.key[0] ?? '-', VALUE: (r) => r.value[0] ?? '-',
    });
  });

  listCommand(bpf, 'metrics', 'packet and byte counters by reason and direction (sl_metrics, all CPUs)', (cmd, format) => {
    print(format, readMetrics(configOf(cmd)), {
      REASON: (r) => r.reason, DIRECTION: (r) => r.direction, PACKETS: (r) => r.packets, BYTES: (r) => r.bytes,
    });
  });

  listCommand(bpf, 'endpoints', 'the sl_endpoints map: local pods as the datapath sees them, with pods, devices and identities named', async (cmd, format) => {
    const cfg = configOf(cmd);
    const names = await mapNames(cfg);
    const devices = new Map(listLinks().map((l) => [l.ifindex, l.name]));
    print(format, endpointRows(cfg, names, devices), {
      IP: (r) => r.ip, POD: (r) => r.pod, ID: (r) => r.id, DEVICE: (r) => r.device ?? `ifindex ${r.ifindex} (gone)`, MAC: (r) => r.mac,
      'GATEWAY MAC': (r) => r.host_mac, IDENTITY: (r) => (r.labels === null ? '0 (none yet)' : `${r.identity} ${r.labels}`), FLAGS: (r) => r.flags,
    });
  });

  listCommand(bpf, 'ipcache', 'the sl_ipcache map: where addresses outside this node live and how they are reached', async (cmd, format) => {
    const cfg = configOf(cmd);
    const names = await mapNames(cfg);
    print(format, ipcacheRows(cfg, names), {
      PREFIX: (r) => r.prefix, IDENTITY: (r) => `${r.identity} ${r.labels}`, 'TUNNEL ENDPOINT': (r) => r.tunnel_endpoint, PATH: (r) => r.path,
    });
  });

  listCommand(bpf, 'nodes', 'the sl_nodes map: the other nodes of the cluster, the only senders of VXLAN this node takes, and the MACs their pods\' routed packets must come from', async (cmd, format) => {
    const cfg = configOf(cmd);
    const store = await openStore(cfg.store, { stateDir: cfg.stateDir, tls: storeTls(cfg) });
    let names: Map<string, string>;
    try {
      names = new Map(parseRecords(await store.list(NODES), parseNodeRecord).records.map((r) => [r.underlayIP, r.name]));
    } finally {
      await store.close();
    }
    print(format, nodesRows(cfg, names), {
      ADDRESS: (r) => r.address, NODE: (r) => r.node || '(no record)', 'POD BLOCK': (r) => r.podBlock || '- (its own address only)', 'SOURCE MAC': (r) => r.mac || '- (not checked)',
    });
  });

  listCommand(bpf, 'prefilter', 'the sl_prefilter map: denied source CIDRs as the XDP prefilter holds them, with what each dropped', (cmd, format) => {
    print(format, prefilterRows(configOf(cmd)), { CIDR: (r) => r.cidr, RULE: (r) => r.rule, PACKETS: (r) => r.packets, BYTES: (r) => r.bytes });
  });

  listCommand(bpf, 'policy', 'the sl_policy map: what each local endpoint may exchange, with identities and policies named', async (cmd, format) => {
    const cfg = configOf(cmd);
    print(format, readPolicyRows(cfg, await mapNames(cfg)), {
      ENDPOINT: (r) => r.endpoint, DIRECTION: (r) => r.direction, PEER: (r) => r.peer, PROTOCOL: (r) => r.protocol, PORTS: (r) => r.ports,
      VERDICT: (r) => r.verdict, POLICY: (r) => r.policy,
    });
  });

  listCommand(bpf, 'ct', 'the sl_ct_v2 map: tracked flows, their state, seconds left and the policy that allowed them', async (cmd, format) => {
    const cfg = configOf(cmd);
    print(format, readCtRows(cfg, await mapNames(cfg)), {
      PROTOCOL: (r) => r.protocol, SOURCE: (r) => r.src, DESTINATION: (r) => r.dst, STATE: (r) => r.state,
      'EXPIRES IN': (r) => (r.expiresIn < 0 ? 'dead' : `${r.expiresIn}s`), PACKETS: (r) => r.packets, BYTES: (r) => r.bytes, POLICY: (r) => r.policy,
    });
  });

  listCommand(bpf, 'nat', 'the sl_nat map: translated flows (masquerade: the node address and port each leaves with; service: the backend a frontend became), packets each way, and whether both entries of the pair are there', (cmd, format) => {
    print(format, readNatRows(configOf(cmd)), {
      KIND: (r) => r.kind, PROTOCOL: (r) => r.protocol, POD: (r) => r.pod, 'AS': (r) => r.node, REMOTE: (r) => r.remote, STATE: (r) => r.state,
      'EXPIRES IN': (r) => (r.expiresIn < 0 ? 'dead' : `${r.expiresIn}s`), OUT: (r) => r.packetsOut, IN: (r) => r.packetsIn, ENTRIES: (r) => r.entries,
    });
  });

  listCommand(bpf, 'services', 'the sl_svc and sl_svc_be maps: every service frontend this node programs, its backends (none: it refuses), affinity and the clients holding one', (cmd, format) => {
    print(format, readServiceRows(configOf(cmd), new Map()), {
      FRONTEND: (r) => r.frontend, PROTOCOL: (r) => r.protocol, KIND: (r) => r.kind, ID: (r) => r.id,
      BACKENDS: (r) => (r.backends.length ? r.backends.join(',') : '(none: refused)'),
      AFFINITY: (r) => (r.affinity ? `${r.affinity}s, ${r.clients} client(s)` : '-'),
    });
  });
}
