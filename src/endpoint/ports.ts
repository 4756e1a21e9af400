/**
 * A pod's declared container ports (Kubernetes `containerPort`s), which named ports in
 * NetworkPolicy resolve against. Pure.
 */
export type PortProtocol = 'TCP' | 'UDP' | 'SCTP';

export interface PodPort {
  /** IANA_SVC_NAME: at most 15 lower-case letters, digits and '-', with a letter. */
  name?: string;
  port: number;
  protocol: PortProtocol;
}

const PORT_NAME = /^(?=.*[a-z])[a-z0-9]([a-z0-9-]{0,13}[a-z0-9])?$/;

/** Validates a list of ports; throws naming the first problem. */
export function checkPorts(v: unknown): PodPort[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new Error('ports must be a list of {name?, port, protocol?}');
  const seen = new Set<string>();
  return v.map((p: unknown, i) => {
    const at = `ports[${i}]`;
    if (typeof p !== 'object' || p === null || Array.isArray(p)) throw new Error(`${at} must be an object {name?, port, protocol?}`);
    const o = p as Record<string, unknown>;
    const port = o.port;
    if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`${at}.port must be an integer from 1 to 65535, got ${JSON.stringify(port)}`);
    const protocol = o.protocol === undefined ? 'TCP' : o.protocol;
    if (protocol !== 'TCP' && protocol !== 'UDP' && protocol !== 'SCTP') throw new Error(`${at}.protocol must be TCP, UDP or SCTP, got ${JSON.stringify(protocol)}`);
    const out: PodPort = { port, protocol };
    if (o.name !== undefined) {
      if (typeof o.name !== 'string' || o.name.length > 15 || !PORT_NAME.test(o.name) || o.name.includes('--')) {
        throw new Error(`${at}.name ${JSON.stringify(o.name)} is not a valid port name (at most 15 lower-case letters, digits and '-', with at least one letter)`);
      }
      if (seen.has(o.name)) throw new Error(`${at}.name '${o.name}' is used twice`);
      seen.add(o.name);
      out.name = o.name;
    }
    return out;
  });
}

/** "http:80/TCP" or "53/UDP" or "8080" (TCP) → a port. */
export function parsePortSpec(s: string): PodPort {
  const m = /^(?:([a-z0-9-]+):)?(\d+)(?:\/(TCP|UDP|SCTP))?$/i.exec(s.trim());
  if (!m) throw new Error(`port '${s}' is not [NAME:]PORT[/PROTOCOL], e.g. http:80/TCP`);
  return checkPorts([{ ...(m[1] ? { name: m[1] } : {}), port: Number(m[2]), protocol: (m[3] ?? 'TCP').toUpperCase() }])[0]!;
}
