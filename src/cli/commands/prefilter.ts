import type { Command } from 'commander';
import type { PrefilterRequest } from '../../api/types.js';
import { uplinkName } from '../../endpoint/mtu.js';
import { parseDenyCidrs } from '../../prefilter/cidr.js';
import { prefilterAdd, prefilterDel, prefilterList, type PrefilterAddResult, type PrefilterDelResult, type PrefilterList } from '../../prefilter/service.js';
import { callAgent, onNode } from '../agent-access.js';
import { configOf } from '../context.js';
import { parseOutput, printJson, printTable } from '../output.js';

const NO_AGENT = 'no sluice agent runs: changed the store and this node\'s sl_prefilter directly '
  + '(the agent attaches xdp_prefilter to the uplink when it starts)';

function note(applied: boolean): void {
  process.stderr.write(applied ? `sluice: ${NO_AGENT}\n` : 'sluice: no sluice agent runs and the datapath is not loaded: changed the store only\n');
}

export function register(program: Command): void {
  const pf = program.command('prefilter')
    .description('deny source CIDRs on the uplink with XDP, before the network stack sees their packets (cluster-wide)');

  pf.command('add')
    .description('deny packets from these source CIDRs (all of them or, on any bad CIDR, none)')
    .argument('<cidr...>', 'IPv4 CIDRs like 198.18.0.0/15 (host bits must be zero; /32 for one address)')
    .option('-o, --output <format>', 'table or json', parseOutput, 'table')
    .action(async function (this: Command, args: string[]) {
      const cidrs = parseDenyCidrs(args);
      const cfg = configOf(this);
      const r = await onNode<PrefilterAddResult & { direct?: boolean }>(cfg,
        (a) => callAgent<PrefilterAddResult>(a, 'POST', '/v1/prefilter/add', { cidrs } satisfies PrefilterRequest),
        async (n) => ({ ...(await prefilterAdd(cfg, n.store, cidrs)), direct: true }));
      if (r.direct) note(r.applied);
      if (this.opts().output === 'json') return printJson({ added: r.added, existing: r.existing });
      for (const e of r.added) process.stdout.write(`denied ${e.cidr} (rule ${e.id})\n`);
      for (const e of r.existing) process.stdout.write(`${e.cidr} was already denied (rule ${e.id}): unchanged\n`);
    });

  pf.command('del')
    .alias('delete')
    .description('stop denying these source CIDRs')
    .argument('<cidr...>', 'IPv4 CIDRs, as they were added')
    .option('-o, --output <format>', 'table or json', parseOutput, 'table')
    .action(async function (this: Command, args: string[]) {
      const cidrs = parseDenyCidrs(args);
      const cfg = configOf(this);
      const r = await onNode<PrefilterDelResult & { direct?: boolean }>(cfg,
        (a) => callAgent<PrefilterDelResult>(a, 'POST', '/v1/prefilter/del', { cidrs } satisfies PrefilterRequest),
        async (n) => ({ ...(await prefilterDel(cfg, n.store, cidrs)), direct: true }));
      if (r.direct) note(r.applied);
      if (this.opts().output === 'json') return printJson({ deleted: r.deleted, absent: r.absent });
      for (const e of r.deleted) process.stdout.write(`removed ${e.cidr} (rule ${e.id})\n`);
      for (const c of r.absent) process.stdout.write(`${c} was not denied: unchanged\n`);
    });

  pf.command('list')
    .alias('ls')
    .description('the denied CIDRs with what each dropped on this node (packets and bytes, all CPUs)')
    .option('-o, --output <format>', 'table or json', parseOutput, 'table')
    .action(async function (this: Command) {
      const cfg = configOf(this);
      const l = await onNode<PrefilterList>(cfg,
        (a) => callAgent<PrefilterList>(a, 'GET', '/v1/prefilter'),
        (n) => prefilterList(cfg, n.store, uplinkName(cfg)));
      if (this.opts().output === 'json') return printJson(l);
      const where = l.attachment
        ? `xdp_prefilter on ${l.attachment.device} (${l.attachment.mode} mode, program id ${l.attachment.programId})`
        : l.uplink ? `xdp_prefilter is not attached to ${l.uplink}${l.entries.length ? '' : ' (nothing to filter: it attaches with the first denied CIDR)'}` : 'xdp_prefilter is not attached (the node has no uplink)';
      process.stdout.write(`${where}\n`);
      printTable(l.entries, {
        CIDR: (e) => e.cidr, RULE: (e) => e.id, PACKETS: (e) => e.packets, BYTES: (e) => e.bytes,
        ACTIVE: (e) => (e.active ? 'yes' : 'no'), ADDED: (e) => e.added,
      });
    });
}
