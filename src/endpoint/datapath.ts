/**
 * An endpoint's presence in the datapath: what its sl_endpoints entry holds (the map's
 * accessors are src/maps/endpoints.ts) and its veth's programs.
 */
import type { Config } from '../config/config.js';
import { attach, detach } from '../datapath/attach.js';
import { attachmentsOf } from '../datapath/attachments.js';
import type { EndpointValue } from '../maps/endpoints.js';
import type { Endpoint } from './types.js';

/** The sl_endpoints entry of `ep` (keyed by its address). */
export function endpointValue(ep: Endpoint): EndpointValue {
  return { ifindex: ep.hostIfindex, id: ep.id, mac: ep.mac, host_mac: ep.hostMac, identity: ep.identity ?? 0, flags: 0 };
}

/** Attaches (or atomically replaces) the pod programs on the endpoint's host veth. */
export function attachEndpoint(cfg: Config, ep: Pick<Endpoint, 'hostIfname' | 'hostIfindex'>): void {
  for (const a of attachmentsOf({ role: 'pod' })) attach(cfg, 'pod', { name: ep.hostIfname, ifindex: ep.hostIfindex }, a.program);
}

export function detachEndpoint(cfg: Config, ep: Pick<Endpoint, 'hostIfname' | 'hostIfindex'>, deviceGone = false): void {
  for (const a of attachmentsOf({ role: 'pod' })) detach(cfg, 'pod', { name: ep.hostIfname, ifindex: deviceGone ? 0 : ep.hostIfindex }, a.program);
}
