/** sl_endpoints: one entry per local pod, keyed by its address (struct sl_endpoint_key → struct sl_endpoint). */
import type { Config } from '../config/config.js';
import { MapDef } from './map.js';

export interface EndpointKey { ip: string }
export interface EndpointValue {
  ifindex: number;
  id: number;
  mac: string;
  host_mac: string;
  identity: number;
  flags: number;
}

export const ENDPOINTS_MAP = new MapDef<EndpointKey, EndpointValue>({
  name: 'sl_endpoints',
  key: { name: 'sl_endpoint_key', fields: { ip: true } },
  value: { name: 'sl_endpoint', fields: { ifindex: true, id: true, mac: true, host_mac: true, identity: true, flags: true } },
  watchFill: true,
});

/** Every entry, by pod address. */
export function readEndpoints(cfg: Pick<Config, 'pinRoot'>): Map<string, EndpointValue> {
  return ENDPOINTS_MAP.with(cfg, (m) => new Map([...m.entries()].map(([k, v]) => [k.ip, v])));
}

export function writeEndpoint(cfg: Pick<Config, 'pinRoot'>, ip: string, v: EndpointValue): void {
  ENDPOINTS_MAP.with(cfg, (m) => m.update({ ip }, v));
}

/** Deletes the entry of `ip`; false when there was none. */
export function deleteEndpoint(cfg: Pick<Config, 'pinRoot'>, ip: string): boolean {
  return ENDPOINTS_MAP.with(cfg, (m) => m.delete({ ip }));
}
