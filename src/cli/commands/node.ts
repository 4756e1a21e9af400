import type { Command } from 'commander';
import { initNode, resetNode } from '../../node/node.js';
import { configOf } from '../context.js';
import { parseOutput, print, printJson } from '../output.js';

export function register(program: Command): void {
  const node = program.command('node').description('set up or remove sluice on this node (the current network namespace)');

  node.command('init')
    .description('mount bpffs, build and load the datapath, re-attach it to existing endpoints (idempotent)')
    .option('-o, --output <format>', 'table or json', parseOutput, 'table')
    .action(function (this: Command) {
      const cfg = configOf(this);
      const r = initNode(cfg);
      if (this.opts().output === 'json') return printJson(r);
      process.stdout.write(`node ${r.node}: pod block ${r.podCIDR}, pod MTU ${r.mtu}, uplink ${r.uplink ?? '(none)'}\n`);
      print('table', r.programs, {
        PROGRAM: (p) => p.name, ID: (p) => p.id, TAG: (p) => p.tag, BUILD: (p) => (p.cached ? 'cached' : 'compiled'),
      });
      if (r.reattached) process.stdout.write(`re-attached to ${r.reattached} existing endpoint(s)\n`);
    });

  node.command('reset')
    .description('remove every endpoint, device, pin and state file sluice made on this node (idempotent)')
    .option('-o, --output <format>', 'table or json', parseOutput, 'table')
    .action(function (this: Command) {
      const r = resetNode(configOf(this));
      if (this.opts().output === 'json') return printJson(r);
      process.stdout.write(`removed ${r.endpoints.length} endpoint(s)${r.devices.length ? ` and ${r.devices.length} stray device(s)` : ''}; pins, state and run directories cleared\n`);
    });
}
