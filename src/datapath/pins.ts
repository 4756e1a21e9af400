/** The layout of a node's pin root: maps at the top, programs and links below. */
import { join } from 'node:path';
import type { Config } from '../config/config.js';

export interface NodePins {
  root: string;
  progs: string;
  /** tc hooks' (tcx) links. */
  links: string;
  /** XDP links. */
  xdpLinks: string;
  map(name: string): string;
  program(name: string): string;
  /** The tcx link of the `hook` (ingress, egress) of device `ifname`. */
  link(ifname: string, hook: string): string;
  /** The XDP link of device `ifname`. */
  xdpLink(ifname: string): string;
  /** The cgroup link of `program`. */
  cgroupLink(program: string): string;
}

/** bpffs names cannot contain '.': a device's dots become ':'. */
const pinName = (ifname: string) => ifname.replace(/\./g, ':');

export function nodePins(cfg: Pick<Config, 'pinRoot'>): NodePins {
  const root = cfg.pinRoot;
  return {
    root,
    progs: join(root, 'progs'),
    links: join(root, 'links'),
    xdpLinks: join(root, 'xdp'),
    map: (name) => join(root, name),
    program: (name) => join(root, 'progs', name),
    link: (ifname, hook) => join(root, 'links', `${pinName(ifname)}-${hook}`),
    xdpLink: (ifname) => join(root, 'xdp', pinName(ifname)),
    cgroupLink: (program) => join(root, 'cgroup', program),
  };
}
