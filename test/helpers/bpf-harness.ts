/**
 * Datapath programs under BPF_PROG_TEST_RUN: objects compiled into a temporary cache and
 * loaded with one temporary pin root (so they share their maps, as on a node), the
 * per-reason counters read back as "reason/dir" words, and test runs whose EINVAL (a
 * frame the kernel refuses before the program runs) comes back as undefined.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BpfError } from '../../src/bpf/errors.js';
import type { BpfMap } from '../../src/bpf/map.js';
import { BpfObject, type LoadedObject } from '../../src/bpf/object.js';
import type { Program } from '../../src/bpf/program.js';
import { testRun, type TestRunResult } from '../../src/bpf/testrun.js';
import { buildProgram } from '../../src/datapath/build.js';
import { pinRoot, type Teardown } from './env.js';

/** Counters summed over CPUs, keyed "reason/dir" with the words `sluice bpf metrics` prints. */
export type Counters = Record<string, { packets: number; bytes: number }>;

const EINVAL = 22;

/** tc verdicts (linux/pkt_cls.h) as the programs return them. */
export const TC_ACT_OK = 0;
export const TC_ACT_SHOT = 2;
export const TC_ACT_REDIRECT = 7;

export interface Harness {
  root: string;
  load(source: string, globals?: Record<string, unknown>): LoadedObject;
  objects: BpfObject[];
  counters(metrics: BpfMap<{ reason: string | number; dir: string | number }, { packets: bigint; bytes: bigint }[]>): Counters;
  run(prog: Program, frame: Buffer, o?: { ctx?: Buffer; repeat?: number }): TestRunResult | undefined;
}

export function bpfHarness(t: Teardown, prefix: string): Harness {
  const root = pinRoot(t, prefix);
  const cacheDir = mkdtempSync(join(tmpdir(), `${prefix}-build-`));
  t.teardown(() => rmSync(cacheDir, { recursive: true, force: true }));
  const objects: BpfObject[] = [];
  t.teardown(() => {
    for (const o of objects) o.close();
  });
  return {
    root,
    objects,
    load(source, globals) {
      const obj = BpfObject.open(buildProgram(source, { cacheDir }).object, { pinRoot: root });
      objects.push(obj);
      if (globals) obj.setGlobals(globals);
      return obj.load();
    },
    counters(metrics) {
      const out: Counters = {};
      for (const [k, perCpu] of metrics.entries()) {
        const word = (v: string | number, p: string) => (typeof v === 'number' ? `${p}${v}` : v.replace(p, '').toLowerCase());
        out[`${word(k.reason, 'SL_REASON_')}/${word(k.dir, 'SL_DIR_')}`] = {
          packets: Number(perCpu.reduce((a, v) => a + v.packets, 0n)),
          bytes: Number(perCpu.reduce((a, v) => a + v.bytes, 0n)),
        };
      }
      return out;
    },
    run(prog, frame, o = {}) {
      try {
        return testRun(prog, { data: frame, ...(o.ctx ? { ctx: o.ctx } : {}), ...(o.repeat ? { repeat: o.repeat } : {}) });
      } catch (e) {
        if (e instanceof BpfError && e.errno === EINVAL) return undefined;
        throw e;
      }
    },
  };
}
