/**
 * Errors the agent's API answers with: an HTTP status and a stable code the CLI and the
 * CNI plugin act on (see src/cni/README.md). `apiError` maps any failure to one.
 */
import { EndpointError } from '../endpoint/manager.js';
import { IpamError } from '../ipam/block.js';
import { StoreError } from '../store/types.js';

export class ApiError extends Error {
  constructor(readonly status: number, readonly code: string, message: string, readonly details?: string) {
    super(message);
    this.name = 'ApiError';
  }
}

const ENDPOINT_STATUS: Record<EndpointError['code'], [number, string]> = {
  invalid_request: [400, 'invalid_request'],
  not_found: [404, 'not_found'],
  conflict: [409, 'conflict'],
  not_ready: [503, 'not_ready'],
  failed: [500, 'internal'],
};

/** Any error as the ApiError the client sees. */
export function apiError(e: unknown): ApiError {
  if (e instanceof ApiError) return e;
  const err = e instanceof Error ? e : new Error(String(e));
  const cause = err.cause instanceof Error ? err.cause.message : undefined;
  if (e instanceof StoreError) return new ApiError(503, 'unavailable', `the store is unavailable: ${err.message}`, cause);
  if (e instanceof IpamError) {
    return new ApiError(/exhausted/.test(err.message) ? 507 : 409, /exhausted/.test(err.message) ? 'ip_exhausted' : 'ipam', err.message);
  }
  if (e instanceof EndpointError) {
    const [status, code] = ENDPOINT_STATUS[e.code];
    // A store outage inside an add or delete is worth retrying, like the outage itself.
    if (e.code === 'failed' && /store|etcd/i.test(err.message) && /unavailable|unreachable|timed out|deadline/i.test(err.message)) {
      return new ApiError(503, 'unavailable', err.message);
    }
    return new ApiError(status, code, err.message);
  }
  return new ApiError(500, 'internal', err.message);
}
