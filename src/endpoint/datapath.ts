/**
 * An endpoint's presence in the datapath: what its sl_endpoints entry holds (the map's
 * accessors are src/maps/endpoints.ts) and its veth's programs.
 */
import { attachTc, detachTc } from '../bpf/tc.js';
import type { Config } from '../config/config.js';
import { nodePins } from '../datapath/pins.js';
import { openProgram } from '../datapath/loader.js';
import { POD_PROGRAMS } from '../datapath/programs.js';
import type { EndpointValue } from '../maps/endpoints.js';
import type { Endpoint } from './types.js';

/** The sl_endpoints entry of `ep` (keyed by its address). */
export function endpointValue(ep: Endpoint): EndpointValue {
  return { ifindex: ep.hostIfindex, id: ep.id, mac: ep.mac, host_mac: ep.hostMac, identity: ep.identity ?? 0, flags: 0 };
}

/** Attaches (or atomically replaces) the pod programs on the endpoint's host veth. */
export function attachEndpoint(cfg: Config, ep: Pick<Endpoint, 'hostIfname' | 'hostIfindex'>): void {
  const pins = nodePins(cfg);
  for (const spec of POD_PROGRAMS) {
    const prog = openProgram(cfg, spec.program);
    try {
      attachTc(prog, ep.hostIfindex, spec.hook, { linkPin: pins.link(ep.hostIfname, spec.hook) });
    } finally {
      prog.close();
    }
  }
}

export function detachEndpoint(cfg: Config, ep: Pick<Endpoint, 'hostIfname' | 'hostIfindex'>, deviceGone = false): void {
  const pins = nodePins(cfg);
  for (const spec of POD_PROGRAMS) {
    detachTc(deviceGone ? 0 : ep.hostIfindex, spec.hook, { linkPin: pins.link(ep.hostIfname, spec.hook) });
  }
}
