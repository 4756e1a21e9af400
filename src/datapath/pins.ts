/** The layout of a node's pin root: maps at the top, programs and tcx links below. */
import { join } from 'node:path';
import type { Config } from '../config/config.js';

export interface NodePins {
  root: string;
  progs: string;
  links: string;
  map(name: string): string;
  program(name: string): string;
  /** The tcx link of `program` on device `ifname`. */
  link(ifname: string, hook: string): string;
}

export function nodePins(cfg: Pick<Config, 'pinRoot'>): NodePins {
  const root = cfg.pinRoot;
  return {
    root,
    progs: join(root, 'progs'),
    links: join(root, 'links'),
    map: (name) => join(root, name),
    program: (name) => join(root, 'progs', name),
    link: (ifname, hook) => join(root, 'links', `${ifname.replace(/\./g, ':')}-${hook}`), // bpffs names cannot contain '.'
  };
}
