import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { parsePolicies, PolicyParseError, formatProblem, type PolicyProblem } from '../../policy/parse.js';
import { applyPolicies, deletePolicies, getPolicy, labelNamespace, listPolicies, namespaceLabels, parsePublishedEndpoint } from '../../policy/store.js';
import { parseRecords } from '../../store/record.js';
import { ENDPOINTS } from '../../store/keys.js';
import { formatSelector } from '../../policy/selector.js';
import { policyKey, type NetworkPolicy, type Protocol } from '../../policy/types.js';
import { evaluate, explain, type ClusterInput, type Pod } from '../../policy/evaluate.js';
import { isIPv4 } from '../../util/ipv4.js';
import { openStore } from '../../store/open.js';
import type { Store } from '../../store/types.js';
import { formatLabels, parseLabelChanges } from '../../util/labels.js';
import { storeTls } from '../../config/config.js';
import { configOf } from '../context.js';
import { parseOutput, print, printJson } from '../output.js';

async function withStore<T>(cmd: Command, fn: (s: Store) => Promise<T>): Promise<T> {
  const cfg = configOf(cmd);
  const store = await openStore(cfg.store, { stateDir: cfg.stateDir, tls: storeTls(cfg) });
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

/**
 * Reads and validates every file; one error lists every problem of every file, and nothing is
 * applied. Warnings (a CIDR with host bits) go to stderr, once the input is known to be valid.
 */
function readPolicyFiles(files: readonly string[]): NetworkPolicy[] {
  const all: NetworkPolicy[] = [];
  const problems: string[] = [];
  const warnings: PolicyProblem[] = [];
  for (const f of files) {
    let text: string;
    try {
      text = f === '-' ? readFileSync(0, 'utf8') : readFileSync(f, 'utf8');
    } catch (e) {
      problems.push(`${f}: cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      continue;
    }
    try {
      all.push(...parsePolicies(text, f === '-' ? '(stdin)' : f, warnings));
    } catch (e) {
      if (e instanceof PolicyParseError) problems.push(...e.errors.map(formatProblem));
      else throw e;
    }
  }
  const seen = new Map<string, number>();
  for (const p of all) seen.set(policyKey(p), (seen.get(policyKey(p)) ?? 0) + 1);
  for (const [k, n] of seen) if (n > 1) problems.push(`policy ${k} is given ${n} times`);
  if (problems.length) throw new Error(`nothing was applied: ${problems.length} problem(s):\n  ${problems.join('\n  ')}`);
  for (const w of warnings) process.stderr.write(`sluice: warning: ${formatProblem(w)}\n`);
  return all;
}

const collect = (v: string, prev: string[] = []) => [...prev, v];

/** The cluster as the reference evaluator sees it: every published endpoint, namespace labels, policies. */
async function clusterFromStore(s: Store): Promise<ClusterInput & { pods: Pod[] }> {
  const { records: eps, problems } = parseRecords(await s.list(ENDPOINTS), parsePublishedEndpoint);
  for (const p of problems) process.stderr.write(`sluice: warning: ${p}\n`);
  const pods: Pod[] = eps.map((e) => ({ namespace: e.namespace, name: e.name.split('/')[1]!, labels: e.labels, ip: e.ip, ports: e.ports }));
  return { policies: await listPolicies(s), namespaces: Object.fromEntries(await namespaceLabels(s)), pods };
}

export function register(program: Command): void {
  const policy = program.command('policy').description('Kubernetes NetworkPolicies (networking.k8s.io/v1), cluster-wide through the store');

  policy.command('apply')
    .description('validate every document of every file, then store them all (or none)')
    .requiredOption('-f, --filename <file>', 'YAML (one or many documents, or a List) or JSON; - for stdin; repeatable', collect)
    .option('-o, --output <format>', 'table or json', parseOutput, 'table')
    .action(async function (this: Command) {
      const o = this.opts<{ filename: string[]; output: 'table' | 'json' }>();
      const policies = readPolicyFiles(o.filename);
      const r = await withStore(this, (s) => applyPolicies(s, policies));
      if (o.output === 'json') return printJson(r);
      for (const [what, list] of Object.entries(r)) for (const k of list as string[]) process.stdout.write(`networkpolicy ${k} ${what}\n`);
    });

  policy.command('delete')
    .alias('del')
    .description('delete policies by NS/NAME, those of files, or all')
    .argument('[ref...]', 'NS/NAME (a bare NAME means namespace default)')
    .option('-f, --filename <file>', 'the policies of these files', collect)
    .option('--all', 'every policy of the cluster')
    .action(async function (this: Command, refs: string[]) {
      const o = this.opts<{ filename?: string[]; all?: boolean }>();
      const named = refs.map((r) => (r.includes('/') ? r : `default/${r}`));
      if (!o.all && named.length === 0 && !o.filename) throw new Error('say which policies: NS/NAME…, -f FILE or --all');
      const fromFiles = o.filename ? readPolicyFiles(o.filename).map(policyKey) : [];
      const deleted = await withStore(this, async (s) => {
        const all = o.all ? (await listPolicies(s)).map(policyKey) : [];
        return deletePolicies(s, [...new Set([...named, ...fromFiles, ...all])]);
      });
      const missing = [...named, ...fromFiles].filter((r) => !deleted.includes(r));
      for (const k of deleted) process.stdout.write(`networkpolicy ${k} deleted\n`);
      if (missing.length) throw new Error(`not found: ${missing.join(', ')}`);
      if (deleted.length === 0 && o.all) process.stdout.write('no policy to delete\n');
    });

  policy.command('list')
    .alias('ls')
    .description('the cluster\'s policies')
    .option('-n, --namespace <ns>', 'only this namespace')
    .option('-o, --output <format>', 'table or json', parseOutput, 'table')
    .action(async function (this: Command) {
      const o = this.opts<{ namespace?: string; output: 'table' | 'json' }>();
      const list = await withStore(this, (s) => listPolicies(s, o.namespace));
      print(o.output, list, {
        NAMESPACE: (p) => p.metadata.namespace, NAME: (p) => p.metadata.name,
        'POD-SELECTOR': (p) => formatSelector(p.spec.podSelector) || '<all>', TYPES: (p) => p.spec.policyTypes.join(','),
        INGRESS: (p) => p.spec.ingress.length, EGRESS: (p) => p.spec.egress.length,
      });
    });

  policy.command('get')
    .description('one policy, as stored (normalised)')
    .argument('<ref>', 'NS/NAME')
    .action(async function (this: Command, ref: string) {
      const key = ref.includes('/') ? ref : `default/${ref}`;
      const p = await withStore(this, (s) => getPolicy(s, key));
      if (!p) throw new Error(`no policy ${key} (see \`sluice policy list\`)`);
      printJson(p);
    });

  policy.command('explain')
    .description('the verdict for a connection and which policies and rules decide it (from the cluster state in the store)')
    .requiredOption('--from <ns/pod|ip>', 'the source: a pod (NS/NAME) or an address outside the cluster')
    .requiredOption('--to <ns/pod|ip>', 'the destination: a pod (NS/NAME) or an address')
    .requiredOption('--port <port/proto>', 'destination port and protocol, e.g. 80/TCP (protocol defaults to TCP)')
    .option('-o, --output <format>', 'table or json', parseOutput, 'table')
    .action(async function (this: Command) {
      const o = this.opts<{ from: string; to: string; port: string; output: 'table' | 'json' }>();
      const m = /^(\d{1,5})(?:\/(TCP|UDP|SCTP))?$/i.exec(o.port);
      if (!m || Number(m[1]) < 1 || Number(m[1]) > 65535) throw new Error(`--port '${o.port}': expected PORT[/TCP|UDP|SCTP], e.g. 80/TCP`);
      const end = (v: string, flag: string) => {
        if (isIPv4(v)) return v;
        const [namespace, name] = v.split('/');
        if (!namespace || !name || v.split('/').length !== 2) throw new Error(`${flag} '${v}': expected NAMESPACE/NAME or an IPv4 address`);
        return { namespace, name };
      };
      const conn = { src: end(o.from, '--from'), dst: end(o.to, '--to'), protocol: (m[2] ?? 'TCP').toUpperCase() as Protocol, port: Number(m[1]) };
      const { cluster } = await withStore(this, async (s) => ({ cluster: await clusterFromStore(s) }));
      for (const e of [conn.src, conn.dst]) {
        if (typeof e !== 'string' && !cluster.pods.some((p) => p.namespace === e.namespace && p.name === e.name)) {
          throw new Error(`no pod ${e.namespace}/${e.name} in the cluster (pods: ${cluster.pods.map((p) => `${p.namespace}/${p.name}`).join(', ') || 'none'})`);
        }
      }
      if (o.output === 'json') return printJson(evaluate(cluster, conn));
      process.stdout.write(`${explain(cluster, conn).join('\n')}\n`);
    });

  const ns = program.command('namespace').alias('ns').description('namespaces and their labels (cluster-wide, for namespaceSelector)');
  ns.command('label')
    .description('set (k=v), overwrite, or remove (k-) labels of a namespace, kubectl style')
    .argument('<name>')
    .argument('<change...>')
    .action(async function (this: Command, name: string, changes: string[]) {
      if (!/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(name)) throw new Error(`namespace '${name}' is not a valid name (DNS-1123 label)`);
      const { set, remove } = parseLabelChanges(changes);
      const labels = await withStore(this, (s) => labelNamespace(s, name, set, remove));
      process.stdout.write(`namespace ${name} labeled: ${formatLabels(labels) || '(no labels)'}\n`);
    });
  ns.command('list')
    .alias('ls')
    .description('namespaces that carry labels')
    .option('-o, --output <format>', 'table or json', parseOutput, 'table')
    .action(async function (this: Command) {
      const m = await withStore(this, (s) => namespaceLabels(s));
      const rows = [...m].map(([name, labels]) => ({ name, labels }));
      print(this.opts().output, rows, { NAME: (r) => r.name, LABELS: (r) => formatLabels(r.labels) || '-' });
    });
}
