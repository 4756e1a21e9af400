/**
 * Masquerade settings for the datapath (pure): what sl_masq and sl_nonmasq hold, from the
 * config, the uplink's address and the node namespace's ephemeral port range
 * (docs/architecture.md, "Masquerade (SNAT)"). A setting that would misdeliver the node's
 * own replies turns masquerade off with a problem that names the key: the node's sockets
 * draw source ports from ip_local_port_range without knowing sl_nat, so the ranges must be
 * disjoint; the overlay's port is the overlay's.
 */
import { formatCidr, parseCidr } from '../util/ipv4.js';
import { masqueradePorts, nonMasqueradeCidrs, type Config, type PortRange } from '../config/config.js';
import { MASQ_FLAGS, type MasqConfigValue } from '../maps/masq.js';

export interface MasqPlan {
  /** sl_masq's entry. */
  config: MasqConfigValue;
  /** sl_nonmasq's CIDRs: nonMasqueradeCIDRs (default the pool), and the pool always. */
  nonMasq: Set<string>;
  problems: string[];
}

export interface MasqInputs {
  /** The uplink's IPv4 address ('' when it has none). */
  uplinkIp: string;
  /** The node namespace's net.ipv4.ip_local_port_range (undefined: unknown). */
  localPorts?: PortRange;
  /** The overlay's UDP port. */
  vxlanPort: number;
}

/** Parses /proc/sys/net/ipv4/ip_local_port_range ("32768\t60999\n"); undefined when it is not two ports. */
export function parseLocalPortRange(text: string): PortRange | undefined {
  const m = /^\s*(\d+)\s+(\d+)\s*$/.exec(text);
  return m ? { min: Number(m[1]), max: Number(m[2]) } : undefined;
}

export function planMasquerade(cfg: Pick<Config, 'masquerade' | 'masqueradeAddress' | 'masqueradePortRange' | 'nonMasqueradeCIDRs' | 'clusterCIDR'>,
  o: MasqInputs): MasqPlan {
  const ports = masqueradePorts(cfg);
  const addr = cfg.masqueradeAddress || o.uplinkIp;
  const nonMasq = new Set([...nonMasqueradeCidrs(cfg), formatCidr(parseCidr(cfg.clusterCIDR))]);
  const problems: string[] = [];
  if (cfg.masquerade) {
    // No uplink address and none configured: nothing leaves for the world to translate to (a
    // node without an underlay, as a single test node is). Masquerade stays off, not a problem.
    if (o.localPorts && o.localPorts.min <= ports.max && ports.min <= o.localPorts.max) {
      problems.push(`masqueradePortRange: ${cfg.masqueradePortRange} overlaps the node's ephemeral ports (net.ipv4.ip_local_port_range `
        + `${o.localPorts.min}-${o.localPorts.max}), whose replies masquerade could take: masquerade is off`);
    }
    if (o.vxlanPort >= ports.min && o.vxlanPort <= ports.max) {
      problems.push(`masqueradePortRange: ${cfg.masqueradePortRange} holds the overlay's port ${o.vxlanPort}: masquerade is off`);
    }
  }
  const on = cfg.masquerade && Boolean(addr) && problems.length === 0;
  return {
    config: { addr: addr || '0.0.0.0', port_min: ports.min, port_max: ports.max, flags: on ? MASQ_FLAGS.on : MASQ_FLAGS.none },
    nonMasq,
    problems,
  };
}
