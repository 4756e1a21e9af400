/** The node configuration as the programs' read-only globals (include/sluice/lib/config.h). */
import type { Config } from '../config/config.js';

export function datapathGlobals(cfg: Config): Record<string, unknown> {
  return {
    sl_gateway_ip: cfg.gatewayIP,
  };
}
