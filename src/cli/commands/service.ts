import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { formatProblem, parseServiceDocuments, ServiceParseError, type ServiceProblem } from '../../service/parse.js';
import {
  applyServices, deleteServiceObjects, getService, listEndpointSlices, listServices, type ServiceApplyResult,
} from '../../service/store.js';
import { serviceKeyOf, type EndpointSlice, type Service } from '../../service/types.js';
import { openStore } from '../../store/open.js';
import type { Store } from '../../store/types.js';
import { storeTls, type Config } from '../../config/config.js';
import { formatLabels } from '../../util/labels.js';
import { configOf } from '../context.js';
import { parseOutput, print, printJson } from '../output.js';

async function withStore<T>(cfg: Config, fn: (s: Store) => Promise<T>): Promise<T> {
  const store = await openStore(cfg.store, { stateDir: cfg.stateDir, tls: storeTls(cfg) });
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

const warn = (line: string): void => void process.stderr.write(`sluice: warning: ${line}\n`);

/**
 * Reads and validates every file; one error lists every problem of every file, and nothing is
 * applied. Warnings go to stderr once the input is known to be valid.
 */
function readServiceFiles(files: readonly string[], verb: 'applied' | 'deleted' = 'applied'): { services: Service[]; slices: EndpointSlice[] } {
  const services: Service[] = [];
  const slices: EndpointSlice[] = [];
  const problems: string[] = [];
  const warnings: ServiceProblem[] = [];
  for (const f of files) {
    let text: string;
    try {
      text = f === '-' ? readFileSync(0, 'utf8') : readFileSync(f, 'utf8');
    } catch (e) {
      problems.push(`${f}: cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      continue;
    }
    try {
      const r = parseServiceDocuments(text, f === '-' ? '(stdin)' : f, warnings);
      services.push(...r.services);
      slices.push(...r.slices);
    } catch (e) {
      if (e instanceof ServiceParseError) problems.push(...e.errors.map(formatProblem));
      else throw e;
    }
  }
  const count = (what: string, refs: string[]) => {
    const seen = new Map<string, number>();
    for (const r of refs) seen.set(r, (seen.get(r) ?? 0) + 1);
    for (const [k, n] of seen) if (n > 1) problems.push(`${what} ${k} is given ${n} times`);
  };
  count('service', services.map(serviceKeyOf));
  count('EndpointSlice', slices.map(serviceKeyOf));
  if (problems.length) throw new Error(`nothing was ${verb}: ${problems.length} problem${problems.length === 1 ? '' : 's'}:\n  ${problems.join('\n  ')}`);
  if (verb === 'applied') for (const w of warnings) warn(formatProblem(w));
  return { services, slices };
}

const collect = (v: string, prev: string[] = []) => [...prev, v];
/** "ns/name", a bare name being in namespace default (as kubectl). */
function ref(v: string): string {
  const r = v.includes('/') ? v : `default/${v}`;
  if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?\/[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(r)) throw new Error(`'${v}' is not NAMESPACE/NAME (or a NAME in namespace default)`);
  return r;
}

/** kubectl's PORT(S): 80/TCP, 80:30080/TCP for a NodePort. */
export function portsColumn(s: Service): string {
  return s.ports.map((p) => `${p.port}${p.nodePort ? `:${p.nodePort}` : ''}/${p.protocol}`).join(',');
}

const affinity = (s: Service): string => (s.sessionAffinity === 'ClientIP' ? `ClientIP (${s.affinityTimeoutSeconds}s)` : 'None');
const selectorText = (s: Service): string => (s.selector ? formatLabels(s.selector) : '<none>');

function printApplied(r: ServiceApplyResult): void {
  for (const s of r.services) {
    const np = s.nodePorts.length ? `, nodePorts ${s.nodePorts.join(',')}` : '';
    process.stdout.write(`service ${s.ref} ${s.action} (clusterIP ${s.clusterIP}${np})\n`);
    for (const a of s.allocated) process.stdout.write(`  allocated ${a}\n`);
  }
  for (const s of r.slices) process.stdout.write(`endpointslice ${s.ref} ${s.action}\n`);
}

function describeService(s: Service, slices: readonly EndpointSlice[]): string {
  const rows: [string, string][] = [
    ['Name', s.name], ['Namespace', s.namespace], ['Type', s.type], ['Selector', selectorText(s)], ['ClusterIP', s.clusterIP],
    ['External IPs', s.externalIPs.join(', ') || '<none>'],
    ...s.ports.map((p, i): [string, string] => [i === 0 ? 'Ports' : '', `${p.name || '<unnamed>'} ${p.port}/${p.protocol} -> targetPort ${p.targetPort}${p.nodePort ? `, nodePort ${p.nodePort}` : ''}`]),
    ['Session affinity', affinity(s)],
    ['Traffic policy', `external ${s.externalTrafficPolicy}, internal ${s.internalTrafficPolicy}`],
  ];
  if (s.selector === null) {
    const mine = slices.filter((x) => x.service === s.name);
    rows.push(['EndpointSlices', mine.map((x) => `${x.name} (${x.endpoints.filter((e) => e.ready).length} ready of ${x.endpoints.length})`).join(', ') || '<none>']);
  }
  const w = Math.max(...rows.map(([k]) => k.length)) + 2;
  return rows.map(([k, v]) => `${(k ? `${k}:` : '').padEnd(w)}${v}`).join('\n');
}

export function register(program: Command): void {
  const service = program.command('service').alias('svc').description('Kubernetes Services (v1) and EndpointSlices (discovery.k8s.io/v1), cluster-wide through the store');

  service.command('apply')
    .description('validate every document of every file, allocate clusterIPs and nodePorts, then store them all (or none)')
    .requiredOption('-f, --filename <file>', 'YAML (one or many documents, or a List) or JSON; - for stdin; repeatable', collect)
    .option('-o, --output <format>', 'table or json', parseOutput, 'table')
    .action(async function (this: Command) {
      const o = this.opts<{ filename: string[]; output: 'table' | 'json' }>();
      const input = readServiceFiles(o.filename);
      const cfg = configOf(this);
      const r = await withStore(cfg, (s) => applyServices(s, input, { serviceCIDR: cfg.serviceCIDR, nodePortRange: cfg.nodePortRange, clusterCIDR: cfg.clusterCIDR }));
      for (const w of [...r.warnings, ...r.problems]) warn(w);
      if (o.output === 'json') return printJson(r);
      printApplied(r);
    });

  service.command('list')
    .alias('ls')
    .description("the cluster's services")
    .option('-n, --namespace <ns>', 'only this namespace')
    .option('-o, --output <format>', 'table or json', parseOutput, 'table')
    .action(async function (this: Command) {
      const o = this.opts<{ namespace?: string; output: 'table' | 'json' }>();
      const problems: string[] = [];
      const list = await withStore(configOf(this), (s) => listServices(s, problems, o.namespace));
      for (const p of problems) warn(p);
      print(o.output, list, {
        NAMESPACE: (s) => s.namespace, NAME: (s) => s.name, TYPE: (s) => s.type, 'CLUSTER-IP': (s) => s.clusterIP,
        'EXTERNAL-IPS': (s) => s.externalIPs.join(',') || '<none>', 'PORT(S)': portsColumn, AFFINITY: affinity, SELECTOR: selectorText,
      });
    });

  service.command('get')
    .description('one service, as stored (its clusterIP and nodePorts allocated)')
    .argument('<ref>', 'NS/NAME (a bare NAME means namespace default)')
    .option('-o, --output <format>', 'table or json', parseOutput, 'table')
    .action(async function (this: Command, name: string) {
      const o = this.opts<{ output: 'table' | 'json' }>();
      const key = ref(name);
      const { svc, slices } = await withStore(configOf(this), async (s) => {
        const problems: string[] = [];
        const found = { svc: await getService(s, key), slices: await listEndpointSlices(s, problems, key.split('/')[0]) };
        for (const p of problems) warn(p);
        return found;
      });
      if (!svc) throw new Error(`no service ${key} (see \`sluice service list\`)`);
      if (o.output === 'json') return printJson(svc);
      process.stdout.write(`${describeService(svc, slices)}\n`);
    });

  service.command('delete')
    .alias('del')
    .description('delete services (NS/NAME), EndpointSlices (--slice), or those of files, in one transaction: all of them exist, or nothing is deleted')
    .argument('[ref...]', 'services: NS/NAME (a bare NAME means namespace default)')
    .option('--slice <ref>', 'an EndpointSlice NS/NAME; repeatable', collect)
    .option('-f, --filename <file>', 'the services and EndpointSlices of these files; repeatable', collect)
    .action(async function (this: Command, refs: string[]) {
      const o = this.opts<{ slice?: string[]; filename?: string[] }>();
      if (refs.length === 0 && !o.slice && !o.filename) throw new Error('say what to delete: NS/NAME…, --slice NS/NAME or -f FILE');
      const fromFiles = o.filename ? readServiceFiles(o.filename, 'deleted') : { services: [], slices: [] };
      const services = [...refs.map(ref), ...fromFiles.services.map(serviceKeyOf)];
      const slices = [...(o.slice ?? []).map(ref), ...fromFiles.slices.map(serviceKeyOf)];
      const deleted = await withStore(configOf(this), (s) => deleteServiceObjects(s, { services, slices }));
      for (const k of deleted.services) process.stdout.write(`service ${k} deleted\n`);
      for (const k of deleted.slices) process.stdout.write(`endpointslice ${k} deleted\n`);
    });

  service.command('slices')
    .description("the cluster's EndpointSlices (the backends of services without a selector)")
    .option('-n, --namespace <ns>', 'only this namespace')
    .option('-o, --output <format>', 'table or json', parseOutput, 'table')
    .action(async function (this: Command) {
      const o = this.opts<{ namespace?: string; output: 'table' | 'json' }>();
      const problems: string[] = [];
      const list = await withStore(configOf(this), (s) => listEndpointSlices(s, problems, o.namespace));
      for (const p of problems) warn(p);
      print(o.output, list, {
        NAMESPACE: (s) => s.namespace, NAME: (s) => s.name, SERVICE: (s) => s.service,
        PORTS: (s) => s.ports.map((p) => `${p.name ? `${p.name}:` : ''}${p.port}/${p.protocol}`).join(',') || '<none>',
        READY: (s) => `${s.endpoints.filter((e) => e.ready).length}/${s.endpoints.length}`,
        ENDPOINTS: (s) => s.endpoints.filter((e) => e.ready).map((e) => e.addresses[0]).join(',') || '<none>',
      });
    });
}
