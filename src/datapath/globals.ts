/** The node configuration as the programs' read-only globals (include/sluice/lib/config.h). */
import type { Config } from '../config/config.js';
import { VXLAN_PORT } from '../net/vxlan.js';

export function datapathGlobals(cfg: Config): Record<string, unknown> {
  return {
    sl_gateway_ip: cfg.gatewayIP,
    sl_vxlan_port: VXLAN_PORT,
  };
}
