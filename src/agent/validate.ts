/** Checks of request bodies: each failure is a 400 invalid_request naming the field. */
import { ApiError } from './errors.js';

export type Body = Record<string, unknown>;

export function invalid(message: string): ApiError {
  return new ApiError(400, 'invalid_request', message);
}

export function object(v: unknown, what = 'the request body'): Body {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw invalid(`${what} must be a JSON object`);
  return v as Body;
}

export function str(b: Body, key: string): string {
  const v = b[key];
  if (typeof v !== 'string' || v === '') throw invalid(`"${key}" must be a non-empty string`);
  return v;
}

export function optStr(b: Body, key: string): string | undefined {
  return b[key] === undefined || b[key] === null ? undefined : str(b, key);
}

export function optLabels(b: Body, key: string): Record<string, string> | undefined {
  const v = b[key];
  if (v === undefined || v === null) return undefined;
  const o = object(v, `"${key}"`);
  for (const [k, x] of Object.entries(o)) if (typeof x !== 'string') throw invalid(`"${key}.${k}" must be a string`);
  return o as Record<string, string>;
}
