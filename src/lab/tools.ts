/** The programs a lab runs: this Node.js, this build of sluice, and etcd. */
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../datapath/paths.js';
import type { PlanTools } from './plan.js';

export function labTools(): PlanTools {
  return { node: process.execPath, sluice: join(PACKAGE_ROOT, 'bin', 'sluice.js'), etcd: process.env.SLUICE_ETCD_BIN || '/usr/bin/etcd' };
}
