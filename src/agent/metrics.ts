/**
 * Prometheus text exposition (format 0.0.4) for the agent: a small registry of counters,
 * gauges and summaries with labels, plus collectors called at scrape time (the datapath's
 * per-CPU counters, map fill levels). Pure apart from the HTTP server at the bottom.
 */
import http from 'node:http';

export type Labels = Record<string, string>;
type Kind = 'counter' | 'gauge' | 'summary';

interface Family {
  name: string;
  help: string;
  kind: Kind;
  samples: Map<string, { labels: Labels; value: number }>;
}

/** A sample produced at scrape time. */
export interface Sample {
  name: string;
  labels?: Labels;
  value: number;
}

export type Collector = () => Sample[];

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function labelText(labels: Labels): string {
  const parts = Object.keys(labels).sort().map((k) => `${k}="${escapeLabel(labels[k]!)}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
}

function num(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

export class Registry {
  private readonly families = new Map<string, Family>();
  private readonly collectors: { family: Family; collect: Collector }[] = [];

  private family(name: string, help: string, kind: Kind): Family {
    if (!NAME.test(name)) throw new Error(`bad metric name ${name}`);
    let f = this.families.get(name);
    if (!f) {
      f = { name, help, kind, samples: new Map() };
      this.families.set(name, f);
    }
    return f;
  }

  counter(name: string, help: string): { inc(labels?: Labels, by?: number): void } {
    const f = this.family(name, help, 'counter');
    return {
      inc: (labels = {}, by = 1) => {
        const k = labelText(labels);
        const s = f.samples.get(k) ?? { labels, value: 0 };
        s.value += by;
        f.samples.set(k, s);
      },
    };
  }

  gauge(name: string, help: string): { set(value: number, labels?: Labels): void } {
    const f = this.family(name, help, 'gauge');
    return { set: (value, labels = {}) => void f.samples.set(labelText(labels), { labels, value }) };
  }

  /** A summary without quantiles: _count and _sum, and the last observation as a gauge. */
  summary(name: string, help: string): { observe(value: number): void } {
    const f = this.family(name, help, 'summary');
    return {
      observe: (value) => {
        const c = f.samples.get('_count') ?? { labels: {}, value: 0 };
        const s = f.samples.get('_sum') ?? { labels: {}, value: 0 };
        c.value += 1;
        s.value += value;
        f.samples.set('_count', c);
        f.samples.set('_sum', s);
      },
    };
  }

  /** Samples of `name` computed at scrape time (a collector that throws yields none). */
  collect(name: string, help: string, kind: 'counter' | 'gauge', collect: Collector): void {
    this.collectors.push({ family: this.family(name, help, kind), collect });
  }

  render(): string {
    const fromCollectors = new Map<string, Sample[]>();
    const errors: string[] = [];
    for (const { family, collect } of this.collectors) {
      try {
        fromCollectors.set(family.name, [...(fromCollectors.get(family.name) ?? []), ...collect()]);
      } catch (e) {
        errors.push(`# collector of ${family.name} failed: ${(e as Error).message.replace(/\n/g, ' ')}`);
      }
    }
    const out: string[] = [];
    for (const f of [...this.families.values()].sort((a, b) => a.name.localeCompare(b.name))) {
      out.push(`# HELP ${f.name} ${f.help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}`, `# TYPE ${f.name} ${f.kind}`);
      if (f.kind === 'summary') {
        for (const suffix of ['_count', '_sum']) out.push(`${f.name}${suffix} ${num(f.samples.get(suffix)?.value ?? 0)}`);
        continue;
      }
      for (const s of [...f.samples.values(), ...(fromCollectors.get(f.name) ?? [])]) {
        out.push(`${f.name}${labelText(s.labels ?? {})} ${num(s.value)}`);
      }
    }
    return `${[...out, ...errors].join('\n')}\n`;
  }
}

/** Serves `registry` at GET /metrics on host:port; resolves to the bound address. */
export async function serveMetrics(registry: Registry, address: string): Promise<{ address: string; close(): Promise<void> }> {
  const i = address.lastIndexOf(':');
  const host = address.slice(0, i);
  const port = Number(address.slice(i + 1));
  const server = http.createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (req.method !== 'GET' || (path !== '/metrics' && path !== '/')) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try GET /metrics\n');
      return;
    }
    const body = registry.render();
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8', 'content-length': Buffer.byteLength(body) }).end(body);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => reject(new Error(`cannot serve metrics on ${address}: ${e.code ?? e.message}`)));
    server.listen(port, host, () => resolve());
  });
  const a = server.address();
  const bound = a && typeof a === 'object' ? `${a.address}:${a.port}` : address;
  return {
    address: bound,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}
