import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import type { NodesResponse } from '../../api/types.js';
import type { Config } from '../../config/config.js';
import {
  INSTALL_DEFAULTS, checkPaths, installNode, systemdMode, uninstallNode, type InstallPaths, type Item, type Report,
} from '../../node/install.js';
import { withNode } from '../../node/context.js';
import { initNode, resetNode } from '../../node/node.js';
import { callAgent, requireAgent, runningAgent } from '../agent-access.js';
import { configOf } from '../context.js';
import { parseOutput, print, printJson, type OutputFormat } from '../output.js';

interface InstallFlags {
  cniBinDir: string;
  cniConfDir: string;
  systemdDir: string;
  configFile: string;
  systemctl: boolean;
  force?: boolean;
  output: OutputFormat;
}

function pathOptions(cmd: Command): Command {
  return cmd
    .option('--cni-bin-dir <dir>', 'CNI plugin directory', INSTALL_DEFAULTS.cniBinDir)
    .option('--cni-conf-dir <dir>', 'CNI network configuration directory', INSTALL_DEFAULTS.cniConfDir)
    .option('--systemd-dir <dir>', 'directory for the systemd unit files', INSTALL_DEFAULTS.systemdDir)
    .option('--config-file <file>', 'the node config file the agent runs with', INSTALL_DEFAULTS.configFile)
    .option('--no-systemctl', "don't run systemctl (only write or remove the unit files)")
    .option('-o, --output <format>', 'table or json', parseOutput, 'table');
}

/** The path flags, validated; a bad one is an error before anything is read or written. */
function pathsOf(o: InstallFlags): InstallPaths {
  const { paths, problems } = checkPaths(o);
  if (problems.length) throw new Error(problems.join('; '));
  return paths;
}

/**
 * The node config install works with: configOf(this), except that without --config an
 * existing --config-file is read (it is the file the agent will run with).
 */
function installConfig(cmd: Command, configFile: string): Config {
  let root = cmd;
  while (root.parent) root = root.parent;
  if (root.getOptionValue('config') === undefined && existsSync(configFile)) root.setOptionValue('config', configFile);
  return configOf(cmd);
}

function printReport<A extends string>(format: OutputFormat, r: Report<A>): void {
  print(format, r.items, { ITEM: (i: Item<A>) => i.item, PATH: (i) => i.path, ACTION: (i) => i.action }, r);
  if (format === 'table') for (const n of r.notes) process.stdout.write(`note: ${n}\n`);
}

export function register(program: Command): void {
  const node = program.command('node').description('set up or remove sluice on this node (the current network namespace)');

  node.command('init')
    .description('mount bpffs, claim the pod block, build and load the datapath (kept as it is when unchanged), re-attach it to existing endpoints (idempotent; the agent does this itself)')
    .option('--reload', 'load the programs even when the pinned ones are the current build')
    .option('-o, --output <format>', 'table or json', parseOutput, 'table')
    .action(async function (this: Command) {
      const cfg = configOf(this);
      const r = await withNode(cfg, (n) => initNode(n, { reload: this.opts().reload === true }));
      if (this.opts().output === 'json') return printJson(r);
      process.stdout.write(`node ${r.node}: pod block ${r.podCIDR}, pod MTU ${r.mtu}, uplink ${r.uplink ?? '(none)'}${r.adopted ? '; datapath unchanged, kept as it was' : ''}\n`);
      print('table', r.programs, {
        PROGRAM: (p) => p.name, ID: (p) => p.id, TAG: (p) => p.tag, BUILD: (p) => (p.cached ? 'cached' : 'compiled'),
      });
      if (r.reattached) process.stdout.write(`re-attached to ${r.reattached} existing endpoint(s)\n`);
    });

  node.command('list')
    .alias('ls')
    .description("the cluster's nodes as this node's agent sees them: pod block, underlay address, how their pods are reached")
    .option('-o, --output <format>', 'table or json', parseOutput, 'table')
    .action(async function (this: Command) {
      const cfg = configOf(this);
      const a = await requireAgent(cfg, '`node list` asks the agent (start it with `sluice agent`)');
      const r = await callAgent<NodesResponse>(a, 'GET', '/v1/nodes');
      if (this.opts().output === 'json') return printJson(r);
      print('table', r.nodes, {
        NAME: (n) => n.name, 'POD CIDR': (n) => n.podCIDR, UNDERLAY: (n) => n.underlayIP || '-', SUBNET: (n) => n.subnet || '-',
        MODE: (n) => n.mode, PATH: (n) => n.path, AGENT: (n) => (n.agentAlive ? 'up' : 'down'),
      });
      for (const n of r.nodes) if (n.reason) process.stdout.write(`${n.name}: ${n.reason}\n`);
      for (const k of r.kernelRoutes) process.stdout.write(`from the kernel's table: ${k.name}\n`);
    });

  node.command('reset')
    .description("remove every endpoint, device, pin and state file sluice made on this node, and release its blocks in the store (idempotent; stop the agent first)")
    .option('-o, --output <format>', 'table or json', parseOutput, 'table')
    .action(async function (this: Command) {
      const cfg = configOf(this);
      if (await runningAgent(cfg)) throw new Error(`the sluice agent of node ${cfg.nodeName} is running: stop it first (systemctl stop sluice-agent, or SIGTERM)`);
      const r = await resetNode(cfg);
      if (this.opts().output === 'json') printJson(r);
      else process.stdout.write(`removed ${r.endpoints.length} endpoint(s)${r.devices.length ? ` and ${r.devices.length} stray device(s)` : ''}; pins, state and run directories cleared\n`);
      if (r.problems.length) throw new Error(`reset was incomplete: ${r.problems.join('; ')}`);
    });

  pathOptions(node.command('install'))
    .description('install sluice on this node: CNI plugin link and network configuration, node config, '
      + 'bpffs mount and agent systemd units, enabled and started when systemd runs (idempotent)')
    .option('--force', "replace a plugin, network configuration or unit file of the same name that is not sluice's")
    .action(function (this: Command) {
      const o = this.opts<InstallFlags>();
      const paths = pathsOf(o);
      const cfg = installConfig(this, paths.configFile);
      printReport(o.output, installNode({ paths, cfg, force: o.force ?? false, systemd: systemdMode(!o.systemctl) }));
    });

  pathOptions(node.command('uninstall'))
    .description('undo node install: stop the agent, remove the units, the plugin link and the network configuration '
      + '(keeps the node config, the pinned datapath and the state: `node reset` removes those; idempotent)')
    .action(function (this: Command) {
      const o = this.opts<InstallFlags>();
      printReport(o.output, uninstallNode({ paths: pathsOf(o), systemd: systemdMode(!o.systemctl) }));
    });
}
