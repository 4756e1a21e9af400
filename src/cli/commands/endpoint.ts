import type { Command } from 'commander';
import { parsePortSpec } from '../../endpoint/ports.js';
import type { EndpointAddRequest, EndpointLabelRequest, EndpointListResponse, EndpointRefRequest, EndpointResponse } from '../../api/types.js';
import type { Endpoint } from '../../endpoint/types.js';
import { formatLabels, parseLabelChanges, parseLabels } from '../../util/labels.js';
import { callAgent, onNode } from '../agent-access.js';
import { configOf } from '../context.js';
import { parseOutput, print } from '../output.js';

const COLUMNS = {
  ID: (e: Endpoint) => e.id,
  NAME: (e: Endpoint) => e.name,
  IP: (e: Endpoint) => e.ip,
  MAC: (e: Endpoint) => e.mac,
  IFINDEX: (e: Endpoint) => e.hostIfindex,
  'HOST IF': (e: Endpoint) => e.hostIfname,
  STATE: (e: Endpoint) => e.state,
  LABELS: (e: Endpoint) => formatLabels(e.labels) || '-',
};

export function register(program: Command): void {
  const ep = program.command('endpoint').description("pods' network interfaces on this node (through the agent when it runs)");

  ep.command('add')
    .description('create a veth pair into a pod network namespace, give it an address and attach the datapath')
    .requiredOption('--netns <name|path>', 'the pod network namespace (a name under /run/netns or a path)')
    .option('--name <ns/name>', 'pod name (default: default/<netns name>)')
    .option('--labels <k=v,...>', 'pod labels', (v: string, prev: string[] = []) => [...prev, v])
    .option('--port <[name:]port[/proto]>', 'a declared container port (repeatable), e.g. http:80/TCP', (v: string, prev: string[] = []) => [...prev, v])
    .option('--ip <ip>', "a specific address from the node's block (default: the next free one)")
    .option('--ifname <name>', 'interface name inside the pod', 'eth0')
    .option('-o, --output <format>', 'table or json', parseOutput, 'table')
    .action(async function (this: Command) {
      const o = this.opts<{ netns: string; name?: string; labels?: string[]; port?: string[]; ip?: string; ifname: string; output: 'table' | 'json' }>();
      const labels = o.labels ? parseLabels(o.labels) : {};
      const ports = (o.port ?? []).map(parsePortSpec);
      const req: EndpointAddRequest = { netns: o.netns, name: o.name, labels, ip: o.ip, ifname: o.ifname, ...(ports.length ? { ports } : {}) };
      const e = await onNode(configOf(this),
        async (a) => (await callAgent<EndpointResponse>(a, 'POST', '/v1/endpoints/add', req)).endpoint,
        (n) => n.manager.add(req));
      print(o.output, [e], COLUMNS, e);
    });

  ep.command('del')
    .alias('delete')
    .description('remove an endpoint: its veth, routes, map entries and address')
    .argument('<id|ns/name>')
    .option('-o, --output <format>', 'table or json', parseOutput, 'table')
    .action(async function (this: Command, ref: string) {
      const cfg = configOf(this);
      const e = await onNode(cfg,
        async (a) => (await callAgent<EndpointResponse>(a, 'POST', '/v1/endpoints/del', { ref } satisfies EndpointRefRequest)).endpoint,
        (n) => n.manager.remove(ref),
        () => {
          throw new Error(`no endpoint '${ref}' on node ${cfg.nodeName} (see \`sluice endpoint list\`)`);
        });
      if (this.opts().output === 'json') print('json', [e], COLUMNS, e);
      else process.stdout.write(`deleted endpoint ${e.id} ${e.name} (${e.ip})\n`);
    });

  ep.command('label')
    .description('set (k=v), overwrite, or remove (k-) labels of an endpoint, kubectl style; its identity and policies follow')
    .argument('<id|ns/name>')
    .argument('<change...>')
    .option('-o, --output <format>', 'table or json', parseOutput, 'table')
    .action(async function (this: Command, ref: string, changes: string[]) {
      const { set, remove } = parseLabelChanges(changes);
      const e = await onNode(configOf(this),
        async (a) => (await callAgent<EndpointResponse>(a, 'POST', '/v1/endpoints/label', { ref, set, remove } satisfies EndpointLabelRequest)).endpoint,
        (n) => n.manager.relabel(ref, set, remove));
      if (this.opts().output === 'json') print('json', [e], COLUMNS, e);
      else process.stdout.write(`endpoint ${e.name} labeled: ${formatLabels(e.labels) || '(no labels)'}\n`);
    });

  ep.command('list')
    .alias('ls')
    .description('list the endpoints of this node')
    .option('-o, --output <format>', 'table or json', parseOutput, 'table')
    .action(async function (this: Command) {
      const list = await onNode(configOf(this),
        async (a) => (await callAgent<EndpointListResponse>(a, 'GET', '/v1/endpoints')).endpoints,
        async (n) => n.manager.list(),
        () => []);
      print(this.opts().output, list, COLUMNS);
    });
}
