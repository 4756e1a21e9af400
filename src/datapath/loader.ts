/**
 * Loading the node's datapath: each program is built (or taken from the cache), loaded
 * with the node's globals, its maps pinned (or reused) under the pin root, and the
 * program pinned at <pinRoot>/progs/<name>. Nothing is attached here; the maps are opened
 * through their modules (src/maps/).
 */
import { join } from 'node:path';
import { BpfObject } from '../bpf/object.js';
import { Program } from '../bpf/program.js';
import type { Config } from '../config/config.js';
import { buildProgram, datapathSources } from './build.js';
import { datapathGlobals } from './globals.js';
import { nodePins } from './pins.js';

export interface LoadedProgram {
  name: string;
  source: string;
  id: number;
  tag: string;
  object: string;
  cached: boolean;
}

export interface LoadOptions {
  cacheDir?: string;
  /** Only these sources (default: every bpf/*.c). */
  sources?: string[];
}

/** Builds and loads every datapath program for `cfg`'s node and pins them. */
export function loadDatapath(cfg: Config, o: LoadOptions = {}): LoadedProgram[] {
  const pins = nodePins(cfg);
  const globals = datapathGlobals(cfg);
  const out: LoadedProgram[] = [];
  for (const source of o.sources ?? datapathSources()) {
    const built = buildProgram(source, { cacheDir: o.cacheDir });
    const obj = BpfObject.open(built.object, { pinRoot: pins.root, logDir: join(cfg.stateDir, 'verifier') });
    try {
      const names = new Set(obj.globalNames());
      const mine = Object.fromEntries(Object.entries(globals).filter(([k]) => names.has(k)));
      if (Object.keys(mine).length) obj.setGlobals(mine);
      const loaded = obj.load();
      for (const [name, prog] of loaded.programs) {
        prog.pin(pins.program(name));
        const info = prog.info();
        out.push({ name, source, id: info.id, tag: info.tag, object: built.object, cached: built.cached });
      }
    } finally {
      obj.close();
    }
  }
  return out;
}

export function openProgram(cfg: Pick<Config, 'pinRoot'>, name: string): Program {
  return Program.openPinned(nodePins(cfg).program(name));
}
