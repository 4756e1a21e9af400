/**
 * Adding, deleting and listing endpoints. Every add validates first, records what it is
 * about to create, and on any failure removes whatever it made: no half-made veth, no
 * leaked address, no stale map entry.
 */
import type { Config } from '../config/config.js';
import { openProgram } from '../datapath/loader.js';
import { POD_PROGRAMS } from '../datapath/programs.js';
import { allocate, release } from '../ipam/block.js';
import { getLink } from '../net/ip.js';
import { currentNetnsId, netnsId, netnsPath } from '../net/netns.js';
import { isIPv4 } from '../util/ipv4.js';
import { labelKeyProblem, labelValueProblem, type Labels } from '../util/labels.js';
import { attachEndpoint, deleteEndpointEntry, detachEndpoint, writeEndpointEntry } from './datapath.js';
import { NodeState } from './state.js';
import { checkIfname, parseEndpointName, type AddEndpointRequest, type Endpoint } from './types.js';
import { activateHostSide, createVeth, deleteVeth, hostIfname } from './veth.js';
import { podMtu } from './mtu.js';

export class EndpointError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EndpointError';
  }
}

function checkLabels(labels: Labels): Labels {
  for (const [k, v] of Object.entries(labels)) {
    const p = labelKeyProblem(k) ?? (typeof v === 'string' ? labelValueProblem(k, v) : `label '${k}': value must be a string`);
    if (p) throw new EndpointError(p);
  }
  return { ...labels };
}

export class EndpointManager {
  readonly state: NodeState;

  constructor(readonly cfg: Config) {
    this.state = new NodeState(cfg);
  }

  list(): Endpoint[] {
    return this.state.endpoints();
  }

  /** Finds an endpoint by id or NAMESPACE/NAME. */
  find(ref: string): Endpoint | undefined {
    const all = this.list();
    if (/^\d+$/.test(ref)) return all.find((e) => e.id === Number(ref));
    return all.find((e) => e.name === ref);
  }

  /** Fails unless `node init` has loaded the programs this node needs. */
  private requireInitialised(): void {
    for (const spec of POD_PROGRAMS) {
      try {
        openProgram(this.cfg, spec.program).close();
      } catch {
        throw new EndpointError(`this node is not initialised (no program pinned under ${this.cfg.pinRoot}): run \`sluice node init\` first`);
      }
    }
  }

  add(req: AddEndpointRequest): Endpoint {
    // 1. Validate everything before changing anything.
    let netns: string;
    try {
      netns = netnsPath(req.netns);
    } catch (e) {
      throw new EndpointError((e as Error).message);
    }
    if (netnsId(netns) === currentNetnsId()) {
      throw new EndpointError(`${req.netns} is the node's own network namespace, not a pod's`);
    }
    let ifname: string;
    let name: string;
    try {
      ifname = checkIfname(req.ifname ?? 'eth0');
      name = req.name ?? `default/${req.netns.includes('/') ? '' : req.netns}`;
      if (name.endsWith('/')) throw new Error('--name NAMESPACE/NAME is required when --netns is a path');
      parseEndpointName(name);
    } catch (e) {
      throw new EndpointError((e as Error).message);
    }
    const labels = checkLabels(req.labels ?? {});
    if (req.ip !== undefined && !isIPv4(req.ip)) throw new EndpointError(`--ip '${req.ip}' is not an IPv4 address`);
    this.requireInitialised();
    const mtu = podMtu(this.cfg);

    return this.state.locked(() => {
      const existing = this.list();
      const dup = existing.find((e) => e.name === name);
      if (dup) throw new EndpointError(`endpoint ${name} already exists (id ${dup.id}, ${dup.ip})`);
      const sameIf = existing.find((e) => netnsId(e.netns) === netnsId(netns) && e.ifname === ifname);
      if (sameIf) throw new EndpointError(`${req.netns} already has ${ifname} from endpoint ${sameIf.name} (id ${sameIf.id})`);
      if (getLink(ifname, netns)) throw new EndpointError(`network namespace ${req.netns} already has an interface named ${ifname}`);
      const hostIf = hostIfname(`${name}/${ifname}`);
      if (getLink(hostIf)) throw new EndpointError(`device ${hostIf} already exists on this node (left over? \`sluice node reset\` removes it)`);

      const id = this.state.nextEndpointId();
      const ipam = this.state.ipam();
      let ip: string;
      try {
        ip = allocate(ipam, `endpoint:${id}`, req.ip);
      } catch (e) {
        throw new EndpointError((e as Error).message);
      }

      // 2. Record the intent, then build; undo everything on failure.
      const ep: Endpoint = {
        id, name, netns, ifname, ip, mac: '', hostIfname: hostIf, hostIfindex: 0, hostMac: '', mtu, labels,
        state: 'creating', created: new Date().toISOString(),
      };
      this.state.saveIpam(ipam);
      this.state.saveEndpoint(ep);
      try {
        const veth = createVeth({ hostIf, podIf: ifname, netns, ip, mtu, gateway: this.cfg.gatewayIP });
        Object.assign(ep, { mac: veth.pod.mac, hostIfindex: veth.host.ifindex, hostMac: veth.host.mac });
        this.state.saveEndpoint(ep);
        writeEndpointEntry(this.cfg, ep);
        attachEndpoint(this.cfg, ep);
        activateHostSide(hostIf, ip, ep.mac);
        ep.state = 'ready';
        this.state.saveEndpoint(ep);
        return ep;
      } catch (e) {
        const leftovers = this.teardown(ep);
        const more = leftovers.length ? `; cleanup also failed: ${leftovers.join('; ')}` : '';
        throw new EndpointError(`adding endpoint ${name} failed: ${(e as Error).message}${more}`);
      }
    });
  }

  /** Deletes an endpoint by id or NAMESPACE/NAME. */
  remove(ref: string): Endpoint {
    const missing = () => new EndpointError(`no endpoint '${ref}' on node ${this.cfg.nodeName} (see \`sluice endpoint list\`)`);
    if (!this.find(ref)) throw missing(); // before locking: a failed delete creates nothing
    return this.state.locked(() => {
      const ep = this.find(ref);
      if (!ep) throw missing();
      const problems = this.teardown(ep);
      if (problems.length) throw new EndpointError(`deleting endpoint ${ep.name} was incomplete: ${problems.join('; ')}`);
      return ep;
    });
  }

  /**
   * Removes everything an endpoint may have: map entry first (stops forwarding to it),
   * programs, devices, address, record. Continues past failures and returns them.
   */
  teardown(ep: Endpoint): string[] {
    const problems: string[] = [];
    const step = (what: string, fn: () => unknown) => {
      try {
        fn();
      } catch (e) {
        problems.push(`${what}: ${(e as Error).message}`);
      }
    };
    step('map entry', () => deleteEndpointEntry(this.cfg, ep.ip));
    const dev = getLink(ep.hostIfname);
    const sameDevice = dev !== undefined && (ep.hostIfindex === 0 || dev.ifindex === ep.hostIfindex);
    step('programs', () => detachEndpoint(this.cfg, { hostIfname: ep.hostIfname, hostIfindex: dev?.ifindex ?? 0 }, !sameDevice));
    if (sameDevice) step('veth', () => deleteVeth(ep.hostIfname));
    step('address', () => {
      const ipam = this.state.ipam();
      if (release(ipam, ep.ip, `endpoint:${ep.id}`)) this.state.saveIpam(ipam);
    });
    if (problems.length === 0) this.state.removeEndpoint(ep.id);
    return problems;
  }

  /** Re-attaches the (re)loaded programs to every endpoint's veth; returns how many. */
  attachAll(): number {
    let n = 0;
    for (const ep of this.list()) {
      if (ep.state !== 'ready') continue;
      const dev = getLink(ep.hostIfname);
      if (!dev || dev.ifindex !== ep.hostIfindex) continue;
      attachEndpoint(this.cfg, ep);
      writeEndpointEntry(this.cfg, ep);
      n++;
    }
    return n;
  }
}

