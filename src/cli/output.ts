/** Printing results: aligned tables for people, JSON (`-o json`) for programs. */

export type OutputFormat = 'table' | 'json';

export function parseOutput(v: string): OutputFormat {
  if (v !== 'table' && v !== 'json') throw new Error(`-o ${v}: expected table or json`);
  return v;
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** An aligned table; `columns` maps headers to cell getters. */
export function printTable<T>(rows: readonly T[], columns: Record<string, (r: T) => string | number>): void {
  const headers = Object.keys(columns);
  const cells = rows.map((r) => headers.map((h) => String(columns[h]!(r))));
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (vals: string[]) => vals.map((v, i) => (i === vals.length - 1 ? v : v.padEnd(widths[i]!))).join('  ').trimEnd();
  process.stdout.write(`${line(headers)}\n`);
  for (const c of cells) process.stdout.write(`${line(c)}\n`);
}

export function print<T>(format: OutputFormat, rows: readonly T[], columns: Record<string, (r: T) => string | number>, json: unknown = rows): void {
  if (format === 'json') printJson(json);
  else printTable(rows, columns);
}
