import { Command, CommanderError } from 'commander';
import type { Mode } from '../../config/config.js';
import { labDown } from '../../lab/down.js';
import { labRestartAgents } from '../../lab/restart.js';
import { execIn, targetOf } from '../../lab/exec.js';
import { DEFAULT_LAB } from '../../lab/plan.js';
import { labStatus, type LabStatus } from '../../lab/status.js';
import { labUp } from '../../lab/up.js';
import { checkLabName } from '../../lab/topology.js';
import { formatLabels } from '../../util/labels.js';
import { parseOutput, printJson, printTable } from '../output.js';

function count(flag: string) {
  return (v: string): number => {
    if (!/^\d+$/.test(v)) throw new Error(`${flag} ${v}: expected a whole number`);
    return Number(v);
  };
}

function labName(v: string): string {
  return checkLabName(v, (p) => {
    throw new Error(`--name: ${p}`);
  });
}

/** The root command's parsed arguments (commander keeps them on the root only). */
function rawArgs(cmd: Command): string[] {
  let root = cmd;
  while (root.parent) root = root.parent;
  return (root as unknown as { rawArgs: string[] }).rawArgs ?? [];
}

/** A value of an option that the root command also defines (--mode, --store): whichever parsed it. */
function optionOf<T>(cmd: Command, key: string): T | undefined {
  const own = cmd.opts<Record<string, unknown>>()[key];
  if (own !== undefined) return own as T;
  let c = cmd.parent;
  while (c) {
    const v = c.opts<Record<string, unknown>>()[key];
    if (v !== undefined) return v as T;
    c = c.parent;
  }
  return undefined;
}

function printStatus(s: LabStatus): void {
  const w = (l = '') => process.stdout.write(`${l}\n`);
  w(`lab ${s.name}: ${s.phase}${s.error ? ` (${s.error.split('\n')[0]})` : ''}, mode ${s.mode}, store ${s.store} (${s.storeSpec})`);
  w(`underlay: ${s.underlay.subnets.map((x) => `${x.name} ${x.cidr}${x.router ? ` via router ${x.router}` : ''}`).join(', ')}`
    + `${s.underlay.etcd ? `; etcd ${s.underlay.etcd.address}:${s.underlay.etcd.port} ${s.underlay.etcd.running ? `(pid ${s.underlay.etcd.pid})` : '(not running)'}` : ''}`);
  w(`namespaces: ${s.namespaces.map((n) => (Object.keys(n.labels).length ? `${n.name} (${formatLabels(n.labels)})` : n.name)).join(', ')}`);
  w();
  printTable(s.nodes, {
    NODE: (n) => n.name,
    SUBNET: (n) => n.subnet,
    'UNDERLAY IP': (n) => n.underlayIP,
    'POD CIDR': (n) => n.podCIDR ?? '-',
    AGENT: (n) => (n.agent.ready ? `ready (pid ${n.agent.pid})` : n.agent.running ? `not ready: ${n.agent.reason ?? '?'}` : 'not running'),
    CONFIG: (n) => n.config,
  });
  w();
  if (s.pods.length === 0) w('no pods');
  else {
    printTable(s.pods, {
      POD: (p) => p.name,
      NODE: (p) => p.node,
      IP: (p) => p.ip ?? '-',
      LABELS: (p) => formatLabels(p.labels) || '-',
      NETNS: (p) => p.netns,
    });
  }
  if (s.external.length) {
    w();
    printTable(s.external, { 'OUTSIDE HOST': (x) => x.name, SUBNET: (x) => x.subnet, IP: (x) => x.ip, NETNS: (x) => x.netns });
  }
}

export function register(program: Command): void {
  const lab = program.command('lab')
    .description('a multi-node sluice cluster on this machine: nodes, pods, underlay and etcd in network namespaces (see docs/lab.md)');

  lab.command('up')
    .description('create a lab: nodes with their agents, the underlay network (and etcd), and pods added through the agents')
    .option('-f, --file <topology>', 'topology file, YAML or JSON (flags override it)')
    .option('--nodes <n>', 'number of nodes (default 2)', count('--nodes'))
    .option('--pods-per-node <m>', 'pods on each node (default 2)', count('--pods-per-node'))
    .option('--mode <mode>', 'vxlan (default), direct or hybrid')
    .option('--store <kind>', 'file (default) or etcd')
    .option('--name <lab>', `lab name (default: the file's name, else ${DEFAULT_LAB})`, labName)
    .option('-o, --output <format>', 'what to print when it is up: table or json (the status)', parseOutput, 'table')
    .action(async function (this: Command) {
      const o = this.opts<{ file?: string; nodes?: number; podsPerNode?: number; name?: string; output: 'table' | 'json' }>();
      const started = Date.now();
      const log = (l: string) => process.stderr.write(`[${((Date.now() - started) / 1000).toFixed(1)}s] ${l}\n`);
      const abort = new AbortController();
      const onSignal = (sig: NodeJS.Signals) => {
        log(`${sig}: stopping and removing what was made`);
        abort.abort(sig);
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      let state;
      try {
        state = await labUp({
          ...(o.file ? { file: o.file } : {}),
          flags: { name: o.name, nodes: o.nodes, podsPerNode: o.podsPerNode, mode: optionOf<string>(this, 'mode'), store: optionOf<string>(this, 'store') },
          log, signal: abort.signal,
        });
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
      log(`lab ${state.name} is up: ${state.plan.nodes.length} node(s), ${state.pods.length} pod(s)`);
      const s = await labStatus(state.name);
      if (o.output === 'json') printJson(s);
      else {
        printStatus(s);
        const flag = s.name === DEFAULT_LAB ? '' : ` --name ${s.name}`;
        const first = s.pods[0];
        const node = s.nodes[0];
        const hints = [
          ...(first ? [`sluice lab exec${flag} ${first.name} -- ip addr show eth0          # in a pod`] : []),
          ...(node ? [
            `sluice lab exec${flag} --node ${node.name} -- sluice endpoint list     # sluice on a node, with its config`,
            `sluice lab exec${flag} --node ${node.name} -- sluice policy apply -f FILE`,
          ] : []),
          ...(s.external[0] ? [`sluice lab exec${flag} --external ${s.external[0].name} -- ping -c 1 ${node?.underlayIP ?? s.external[0].ip}     # outside the cluster`] : []),
          `sluice lab down${flag}`,
        ];
        process.stdout.write(`\ntry: ${hints.join('\n     ')}\n`);
      }
    });

  lab.command('status')
    .description("the lab's nodes (underlay address, pod block, agent, config file) and pods (address, labels, netns)")
    .option('--name <lab>', `lab name (default ${DEFAULT_LAB})`, labName, DEFAULT_LAB)
    .option('-o, --output <format>', 'table or json', parseOutput, 'table')
    .action(async function (this: Command) {
      const o = this.opts<{ name: string; output: 'table' | 'json' }>();
      const s = await labStatus(o.name);
      if (o.output === 'json') printJson(s);
      else printStatus(s);
    });

  lab.command('exec')
    .description("run a command in a pod's network namespace, a node's with --node (there `sluice` is this build, with the node's config) or an outside host's with --external; its exit status is exec's")
    .usage('[--name LAB] POD -- CMD [ARGS…]  |  [--name LAB] --node NODE -- CMD [ARGS…]  |  [--name LAB] --external HOST -- CMD [ARGS…]')
    .argument('[pod]', 'NS/NAME, or NAME when only one namespace has it')
    .argument('[command...]', 'the command, after --')
    .option('--name <lab>', `lab name (default ${DEFAULT_LAB})`, labName, DEFAULT_LAB)
    .option('--node <node>', "run in this node's network namespace instead of a pod's")
    .option('--external <host>', "run in this outside host's network namespace (`sluice lab status` lists them)")
    .action(async function (this: Command) {
      const o = this.opts<{ name: string; node?: string; external?: string }>();
      const raw = rawArgs(this);
      const dd = raw.indexOf('--');
      if (dd < 0) throw new Error('put -- before the command: sluice lab exec POD -- CMD [ARGS…]');
      const cmd = raw.slice(dd + 1);
      const before = this.args.slice(0, this.args.length - cmd.length);
      if (o.node && o.external) throw new Error('give --node or --external, not both');
      const other = o.node ? `--node ${o.node}` : o.external ? `--external ${o.external}` : undefined;
      if (other ? before.length !== 0 : before.length !== 1) {
        throw new Error(other ? `${other} takes no pod (got ${before.join(' ')})` : `expected one pod before -- (got ${before.length ? before.join(' ') : 'none'})`);
      }
      const place = targetOf(o.name, o.node ? { node: o.node } : o.external ? { external: o.external } : { pod: before[0]! });
      const code = await execIn(place, cmd);
      // main() turns a CommanderError into the process's exit status without printing anything.
      if (code !== 0) throw new CommanderError(code, 'sluice.lab.exec', '');
    });

  lab.command('restart')
    .description("restart the lab's agents (all, or the named nodes), optionally switching every node's mode; pods stay")
    .argument('[node...]', 'nodes to restart (default: all)')
    .option('--name <lab>', `lab name (default ${DEFAULT_LAB})`, labName, DEFAULT_LAB)
    .option('--mode <mode>', 'write this mode into the nodes\' configs first: vxlan, direct or hybrid')
    .option('--kill', 'SIGKILL the agents (a crash) instead of SIGTERM')
    .option('--upgrade', 'start the agents from this build of sluice (an upgrade of running nodes: pods keep their traffic)')
    .action(async function (this: Command, nodes: string[]) {
      const o = this.opts<{ name: string; kill?: boolean; upgrade?: boolean }>();
      const mode = optionOf<Mode>(this, 'mode');
      await labRestartAgents({ name: o.name, nodes, ...(mode ? { mode } : {}), kill: o.kill === true, upgrade: o.upgrade === true, log: (l) => process.stderr.write(`${l}\n`) });
      process.stdout.write(`lab ${o.name}: ${nodes.length ? nodes.join(', ') : 'every node'} ${o.upgrade ? 'upgraded to this build' : 'restarted'}${mode ? ` in mode ${mode}` : ''}\n`);
    });

  lab.command('down')
    .description('remove the lab: agents, etcd, network namespaces, pins and its directory (idempotent)')
    .option('--name <lab>', `lab name (default ${DEFAULT_LAB})`, labName, DEFAULT_LAB)
    .action(async function (this: Command) {
      const o = this.opts<{ name: string }>();
      const r = await labDown(o.name, (l) => process.stderr.write(`${l}\n`));
      process.stdout.write(r.existed ? `lab ${o.name} removed\n` : `no lab ${o.name}: nothing to remove\n`);
    });
}
