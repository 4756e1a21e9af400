/** sl_monitor: the event settings (one entry, key 0: __u32 → struct sl_monitor_config), written by the agent. */
import type { Config } from '../config/config.js';
import { MapDef } from './map.js';

export interface MonitorSettings {
  trace: boolean;
  /** Events per second per CPU (0: the datapath's default). */
  rate: number;
}

interface MonitorConfig { trace: number; rate: number }

export const MONITOR_MAP = new MapDef<number, MonitorConfig>({
  name: 'sl_monitor',
  key: { name: '__u32' },
  value: { name: 'sl_monitor_config', fields: { trace: true, rate: true } },
});

export function writeMonitorSettings(cfg: Pick<Config, 'pinRoot'>, s: MonitorSettings): void {
  MONITOR_MAP.with(cfg, (m) => m.update(0, { trace: s.trace ? 1 : 0, rate: s.rate }));
}
