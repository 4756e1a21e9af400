/** Kubernetes label syntax: parsing `k=v,k2=v2` and validating keys and values. Pure. */

export type Labels = Record<string, string>;

const NAME = /^[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;
const VALUE = /^([A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?)?$/;

/** Why `key` is not a valid label key, or undefined when it is. */
export function labelKeyProblem(key: string): string | undefined {
  const slash = key.indexOf('/');
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  if (prefix !== undefined && (prefix.length > 253 || !DNS_SUBDOMAIN.test(prefix))) {
    return `label key '${key}': the prefix must be a DNS subdomain (lower-case, at most 253 characters)`;
  }
  if (!NAME.test(name)) {
    return `label key '${key}': the name must be 1-63 characters of letters, digits, '-', '_' or '.', starting and ending with a letter or digit`;
  }
  return undefined;
}

export function labelValueProblem(key: string, value: string): string | undefined {
  if (!VALUE.test(value)) {
    return `label '${key}': value '${value}' must be at most 63 characters of letters, digits, '-', '_' or '.', starting and ending with a letter or digit`;
  }
  return undefined;
}

/** Parses "k=v,k2=v2" (or several such arguments). Throws naming the bad label. */
export function parseLabels(specs: string | readonly string[]): Labels {
  const out: Labels = {};
  const parts = (typeof specs === 'string' ? [specs] : specs).flatMap((s) => s.split(',')).map((s) => s.trim()).filter(Boolean);
  for (const p of parts) {
    const eq = p.indexOf('=');
    if (eq <= 0) throw new Error(`label '${p}' is not of the form key=value`);
    const key = p.slice(0, eq);
    const value = p.slice(eq + 1);
    const problem = labelKeyProblem(key) ?? labelValueProblem(key, value);
    if (problem) throw new Error(problem);
    out[key] = value;
  }
  return out;
}

export function formatLabels(l: Labels): string {
  return Object.keys(l).sort().map((k) => `${k}=${l[k]}`).join(',');
}

/** kubectl label syntax: `k=v` sets (or overwrites), `k-` removes. Throws naming the bad argument. */
export function parseLabelChanges(args: readonly string[]): { set: Labels; remove: string[] } {
  if (args.length === 0) throw new Error('no label change given: expected key=value or key-');
  const set: Labels = {};
  const remove: string[] = [];
  for (const a of args) {
    if (a.endsWith('-') && !a.includes('=')) {
      const key = a.slice(0, -1);
      const problem = labelKeyProblem(key);
      if (problem) throw new Error(problem);
      remove.push(key);
    } else Object.assign(set, parseLabels(a));
  }
  const both = remove.filter((k) => k in set);
  if (both.length) throw new Error(`label ${both.join(', ')} is both set and removed`);
  return { set, remove };
}
