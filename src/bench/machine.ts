/** What the numbers were measured on. */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism, release } from 'node:os';
import type { MachineInfo } from './stats.js';

function firstLine(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  // eslint-disable-next-line no-control-regex -- ESC starts the ANSI colour codes stripped here
  const text = `${r.stdout ?? ''}\n${r.stderr ?? ''}`.replace(/\x1b\[[0-9;]*[A-Za-z]/g, '');
  return text.split('\n').map((l) => l.trim()).find((l) => l) ?? `${cmd}: unknown version`;
}

/** "sockperf, version 3.7-no.git" → "sockperf 3.7". */
export function toolVersion(tool: string, line: string): string {
  const m = /version\s+v?(\d[\w.]*)/i.exec(line);
  return m ? `${tool} ${m[1]!.replace(/-no\.git$/, '').replace(/\.$/, '')}` : line;
}

export function cpuModel(cpuinfo: string): string {
  const m = /^model name\s*:\s*(.+)$/m.exec(cpuinfo) ?? /^(?:Hardware|Processor|cpu model|cpu)\s*:\s*(.+)$/m.exec(cpuinfo);
  return m ? m[1]!.trim() : 'unknown CPU';
}

export function machineInfo(): MachineInfo {
  let cpuinfo = '';
  try {
    cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    // left unknown
  }
  return {
    kernel: release(),
    cpuModel: cpuModel(cpuinfo),
    nproc: availableParallelism(),
    node: process.version,
    iperf3: firstLine('iperf3', ['--version']).replace(/\s*\(cJSON.*\)$/, ''),
    sockperf: toolVersion('sockperf', firstLine('sockperf', ['--version'])),
  };
}

/** The CPUs this process may run on (taskset targets must be among them). */
export function allowedCpus(): number[] {
  try {
    const status = readFileSync('/proc/self/status', 'utf8');
    const list = /^Cpus_allowed_list:\s*(.+)$/m.exec(status)?.[1] ?? '';
    return parseCpuList(list);
  } catch {
    return [];
  }
}

/** "0-2,5" → [0, 1, 2, 5]. */
export function parseCpuList(list: string): number[] {
  const out: number[] = [];
  for (const part of list.split(',').map((s) => s.trim()).filter(Boolean)) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m) continue;
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    for (let i = a; i <= b; i++) out.push(i);
  }
  return out;
}
