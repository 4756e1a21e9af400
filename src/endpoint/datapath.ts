/** An endpoint's presence in the datapath: its sl_endpoints entry and its veth's programs. */
import type { Config } from '../config/config.js';
import { attach, detach } from '../datapath/attach.js';
import { attachmentsOf } from '../datapath/attachments.js';
import { openMap } from '../datapath/loader.js';
import type { Endpoint } from './types.js';

export interface EndpointKey { ip: string }
export interface EndpointValue {
  ifindex: number;
  id: number;
  mac: string;
  host_mac: string;
  identity: number;
  flags: number;
}

export const ENDPOINTS_MAP = 'sl_endpoints';

export function endpointValue(ep: Endpoint): EndpointValue {
  return { ifindex: ep.hostIfindex, id: ep.id, mac: ep.mac, host_mac: ep.hostMac, identity: ep.identity ?? 0, flags: 0 };
}

export function writeEndpointEntry(cfg: Config, ep: Endpoint): void {
  const m = openMap<EndpointKey, EndpointValue>(cfg, ENDPOINTS_MAP);
  try {
    m.update({ ip: ep.ip }, endpointValue(ep));
  } finally {
    m.close();
  }
}

export function deleteEndpointEntry(cfg: Config, ip: string): boolean {
  const m = openMap<EndpointKey, EndpointValue>(cfg, ENDPOINTS_MAP);
  try {
    return m.delete({ ip });
  } finally {
    m.close();
  }
}

export function readEndpointEntries(cfg: Config): Map<string, EndpointValue> {
  const m = openMap<EndpointKey, EndpointValue>(cfg, ENDPOINTS_MAP);
  try {
    return new Map([...m.entries()].map(([k, v]) => [k.ip, v]));
  } finally {
    m.close();
  }
}

/** Attaches (or atomically replaces) the pod programs on the endpoint's host veth. */
export function attachEndpoint(cfg: Config, ep: Pick<Endpoint, 'hostIfname' | 'hostIfindex'>): void {
  for (const a of attachmentsOf({ role: 'pod' })) attach(cfg, 'pod', { name: ep.hostIfname, ifindex: ep.hostIfindex }, a.program);
}

export function detachEndpoint(cfg: Config, ep: Pick<Endpoint, 'hostIfname' | 'hostIfindex'>, deviceGone = false): void {
  for (const a of attachmentsOf({ role: 'pod' })) detach(cfg, 'pod', { name: ep.hostIfname, ifindex: deviceGone ? 0 : ep.hostIfindex }, a.program);
}
