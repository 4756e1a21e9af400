/**
 * Kubernetes label selectors (metav1.LabelSelector): matching and display. Pure.
 *
 * Semantics, as the API defines them:
 * - the empty selector `{}` matches every label set;
 * - every `matchLabels` entry and every `matchExpressions` requirement must hold (AND);
 * - `In`: the key is present and its value is one of `values`;
 * - `NotIn`: the key is absent, or its value is none of `values`;
 * - `Exists`: the key is present (any value, including the empty string);
 * - `DoesNotExist`: the key is absent.
 */
import type { Labels } from '../util/labels.js';
import type { LabelSelector, LabelSelectorRequirement } from './types.js';

function has(labels: Labels, key: string): boolean {
  return Object.prototype.hasOwnProperty.call(labels, key);
}

/** Whether one requirement holds for `labels`. Throws on a requirement the API would reject. */
export function matchesRequirement(req: LabelSelectorRequirement, labels: Labels): boolean {
  const values = req.values ?? [];
  switch (req.operator) {
    case 'In':
    case 'NotIn':
      if (values.length === 0) throw new Error(`selector requirement on '${req.key}': operator ${req.operator} needs at least one value`);
      if (req.operator === 'In') return has(labels, req.key) && values.includes(labels[req.key]!);
      return !has(labels, req.key) || !values.includes(labels[req.key]!);
    case 'Exists':
    case 'DoesNotExist':
      if (values.length > 0) throw new Error(`selector requirement on '${req.key}': operator ${req.operator} takes no values`);
      return req.operator === 'Exists' ? has(labels, req.key) : !has(labels, req.key);
    default:
      throw new Error(`selector requirement on '${req.key}': unknown operator ${JSON.stringify((req as { operator: unknown }).operator)}`);
  }
}

/** Whether `selector` selects an object with `labels`. `{}` selects everything. */
export function matchesSelector(selector: LabelSelector, labels: Labels): boolean {
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) {
    if (!has(labels, key) || labels[key] !== value) return false;
  }
  for (const req of selector.matchExpressions ?? []) {
    if (!matchesRequirement(req, labels)) return false;
  }
  return true;
}

/** Whether the selector has no terms (and so matches everything). */
export function isEmptySelector(selector: LabelSelector): boolean {
  return Object.keys(selector.matchLabels ?? {}).length === 0 && (selector.matchExpressions ?? []).length === 0;
}

/**
 * The selector in kubectl's notation: `app=web,env in (prod,staging),tier notin (db),debug,!canary`;
 * `{}` for the empty selector (which matches everything).
 */
export function formatSelector(selector: LabelSelector): string {
  const terms: string[] = [];
  for (const key of Object.keys(selector.matchLabels ?? {}).sort()) terms.push(`${key}=${selector.matchLabels![key]}`);
  for (const req of selector.matchExpressions ?? []) {
    const values = [...(req.values ?? [])].sort().join(',');
    if (req.operator === 'In') terms.push(`${req.key} in (${values})`);
    else if (req.operator === 'NotIn') terms.push(`${req.key} notin (${values})`);
    else if (req.operator === 'Exists') terms.push(req.key);
    else terms.push(`!${req.key}`);
  }
  return terms.length === 0 ? '{}' : terms.join(',');
}
