/**
 * Adding, deleting and listing endpoints. Every add validates first, records what it is
 * about to create (state 'creating'), and on any failure removes whatever it made: no
 * half-made veth, no leaked address, no stale map entry. A crash in the middle leaves a
 * 'creating' or 'deleting' record that the next reconciliation finishes.
 *
 * Addresses come from the store-backed pool; a record names its IPAM handle, so the
 * address and the endpoint are tied together whatever happens between the steps.
 */
import type { Config } from '../config/config.js';
import { openProgram } from '../datapath/loader.js';
import { attachmentsOf } from '../datapath/attachments.js';
import type { Pool } from '../ipam/pool.js';
import { getLink } from '../net/ip.js';
import { currentNetnsId, netnsId, netnsPath } from '../net/netns.js';
import { isIPv4 } from '../util/ipv4.js';
import { labelKeyProblem, labelValueProblem, type Labels } from '../util/labels.js';
import { removeEndpointFlows } from '../maps/ct.js';
import { removeAddressNat } from '../maps/nat.js';
import { deleteEndpoint, writeEndpoint } from '../maps/endpoints.js';
import { attachEndpoint, detachEndpoint, endpointValue } from './datapath.js';
import { NodeState } from './state.js';
import { checkIfname, parseEndpointName, type AddEndpointRequest, type Endpoint } from './types.js';
import { activateHostSide, createVeth, deleteVeth, hostIfname } from './veth.js';
import { podMtu } from './mtu.js';
import { checkPorts, type PodPort } from './ports.js';

export type EndpointErrorCode = 'invalid_request' | 'not_found' | 'conflict' | 'not_ready' | 'failed';

export class EndpointError extends Error {
  constructor(message: string, readonly code: EndpointErrorCode = 'failed') {
    super(message);
    this.name = 'EndpointError';
  }
}

function checkLabels(labels: Labels): Labels {
  for (const [k, v] of Object.entries(labels)) {
    const p = labelKeyProblem(k) ?? (typeof v === 'string' ? labelValueProblem(k, v) : `label '${k}': value must be a string`);
    if (p) throw new EndpointError(p, 'invalid_request');
  }
  return { ...labels };
}

export function notInitialised(cfg: Pick<Config, 'pinRoot' | 'nodeName'>): string {
  return `node ${cfg.nodeName} is not initialised (no program pinned under ${cfg.pinRoot}): run \`sluice node init\` first, or start \`sluice agent\``;
}

const CONTAINER_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$/;

/** A default endpoint name for a container the runtime did not name: "default/<container id>". */
export function containerEndpointName(containerId: string, ifname: string): string {
  const id = containerId.toLowerCase().replace(/[^a-z0-9-]/g, '-').replace(/^-+|-+$/g, '').slice(0, 40) || 'container';
  return `default/${id}${ifname === 'eth0' ? '' : `-${ifname.toLowerCase().replace(/[^a-z0-9]/g, '')}`}`;
}

/**
 * What a new endpoint must get before the datapath knows it (the agent's policy feature):
 * its identity and its policy entries, so that its first packet in either direction meets
 * the policy in force. `admit` runs after the veth exists (host side down) and before the
 * sl_endpoints entry and the programs; `forget` when the add fails after it.
 */
export interface EndpointAdmission {
  admit(ep: Readonly<Endpoint>): Promise<{ identity?: number }>;
  forget(ep: Readonly<Endpoint>): void;
}

interface ValidAdd {
  netns: string;
  ifname: string;
  name: string;
  labels: Labels;
  ports: PodPort[];
  ip?: string;
  containerId?: string;
}

export class EndpointManager {
  readonly state: NodeState;
  /** Set by the agent; without one (the CLI on its own) an endpoint starts with identity 0. */
  admission: EndpointAdmission | undefined;

  constructor(readonly cfg: Config, readonly pool: Pool) {
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

  findByContainer(containerId: string, ifname: string): Endpoint | undefined {
    return this.list().find((e) => e.containerId === containerId && e.ifname === ifname);
  }

  /** Fails unless the programs this node needs are loaded and pinned. */
  requireInitialised(): void {
    for (const a of attachmentsOf({ role: 'pod' })) {
      try {
        openProgram(this.cfg, a.program).close();
      } catch {
        throw new EndpointError(notInitialised(this.cfg), 'not_ready');
      }
    }
  }

  /** Every check that needs no lock; throws EndpointError('invalid_request') naming the problem. */
  private validate(req: AddEndpointRequest): ValidAdd {
    const bad = (e: unknown) => new EndpointError((e as Error).message, 'invalid_request');
    let netns: string;
    try {
      netns = netnsPath(req.netns);
    } catch (e) {
      throw bad(e);
    }
    if (netnsId(netns) === currentNetnsId()) {
      throw new EndpointError(`${req.netns} is the node's own network namespace, not a pod's`, 'invalid_request');
    }
    if (req.containerId !== undefined && !CONTAINER_ID.test(req.containerId)) {
      throw new EndpointError(`container id '${req.containerId}' is not valid (letters, digits, '_', '.', '-')`, 'invalid_request');
    }
    let ifname: string;
    let name: string;
    try {
      ifname = checkIfname(req.ifname ?? 'eth0');
      if (req.name) name = req.name;
      else if (req.containerId) name = containerEndpointName(req.containerId, ifname);
      else if (req.netns.includes('/')) throw new Error('--name NAMESPACE/NAME is required when --netns is a path');
      else name = `default/${req.netns}`;
      parseEndpointName(name);
    } catch (e) {
      throw bad(e);
    }
    const labels = checkLabels(req.labels ?? {});
    let ports: PodPort[];
    try {
      ports = checkPorts(req.ports);
    } catch (e) {
      throw bad(e);
    }
    if (req.ip !== undefined && !isIPv4(req.ip)) throw new EndpointError(`--ip '${req.ip}' is not an IPv4 address`, 'invalid_request');
    return { netns, ifname, name, labels, ports, ...(req.ip ? { ip: req.ip } : {}), ...(req.containerId ? { containerId: req.containerId } : {}) };
  }

  /**
   * Creates an endpoint. With a containerId the add is idempotent per (containerId,
   * ifname): a repeated add returns the endpoint the first one made.
   */
  async add(req: AddEndpointRequest): Promise<Endpoint> {
    const v = this.validate(req);
    this.requireInitialised();
    const mtu = podMtu(this.cfg);

    return this.state.lockedAsync(async () => {
      if (v.containerId) {
        const same = this.findByContainer(v.containerId, v.ifname);
        // The same container's interface, still alive in the same namespace: the add already happened.
        if (same?.state === 'ready' && !podGone(same) && safeNetnsId(same.netns) === netnsId(v.netns)) return same;
        // An interrupted add, a pod whose namespace is gone, or a namespace the runtime replaced.
        if (same) await this.finishTeardown(same);
      }
      const existing = this.list();
      const dup = existing.find((e) => e.name === v.name && e.ifname === v.ifname);
      if (dup && !(v.containerId && dup.containerId && (await this.collectIfGone(dup)))) {
        throw new EndpointError(`endpoint ${v.name} already exists (id ${dup.id}, ${dup.ip})`, 'conflict');
      }
      const sameIf = existing.find((e) => e !== dup && e.ifname === v.ifname && safeNetnsId(e.netns) === netnsId(v.netns));
      if (sameIf) throw new EndpointError(`${req.netns} already has ${v.ifname} from endpoint ${sameIf.name} (id ${sameIf.id})`, 'conflict');
      if (getLink(v.ifname, v.netns)) throw new EndpointError(`network namespace ${req.netns} already has an interface named ${v.ifname}`, 'conflict');
      const hostIf = hostIfname(v.containerId ? `${v.containerId}/${v.ifname}` : `${v.name}/${v.ifname}`);
      if (getLink(hostIf)) throw new EndpointError(`device ${hostIf} already exists on this node (left over? \`sluice node reset\` removes it)`, 'conflict');

      // Record the intent first: whatever happens next, the record names what to undo.
      const id = this.state.nextEndpointId();
      const ep: Endpoint = {
        id, name: v.name, netns: v.netns, ifname: v.ifname, ip: '', mac: '', hostIfname: hostIf, hostIfindex: 0, hostMac: '',
        mtu, labels: v.labels, ...(v.ports.length ? { ports: v.ports } : {}), state: 'creating', created: new Date().toISOString(),
        ...(v.containerId ? { containerId: v.containerId } : {}),
        handle: `${this.cfg.nodeName}/${v.containerId ?? v.name}/${v.ifname}`,
      };
      this.state.saveEndpoint(ep);
      let admitted = false;
      try {
        ep.ip = (await this.pool.allocate(ep.handle, v.ip)).ip;
        this.state.saveEndpoint(ep);
        const veth = createVeth({ hostIf, podIf: v.ifname, netns: v.netns, ip: ep.ip, mtu, gateway: this.cfg.gatewayIP });
        Object.assign(ep, { mac: veth.pod.mac, hostIfindex: veth.host.ifindex, hostMac: veth.host.mac });
        this.state.saveEndpoint(ep);
        if (this.admission) {
          admitted = true;
          const a = await this.admission.admit(ep);
          if (a.identity !== undefined) ep.identity = a.identity;
          this.state.saveEndpoint(ep);
        }
        // Complete from its first write: the datapath never sees the pod without its identity.
        writeEndpoint(this.cfg, ep.ip, endpointValue(ep));
        attachEndpoint(this.cfg, ep);
        activateHostSide(hostIf, ep.ip, ep.mac);
        ep.state = 'ready';
        this.state.saveEndpoint(ep);
        return ep;
      } catch (e) {
        if (admitted) this.admission?.forget(ep);
        const leftovers = await this.teardown(ep);
        const more = leftovers.length ? `; cleanup also failed (the agent retries it): ${leftovers.join('; ')}` : '';
        throw new EndpointError(`adding endpoint ${v.name} failed: ${(e as Error).message}${more}`);
      }
    });
  }

  /**
   * Changes an endpoint's labels (kubectl style: set/overwrite, remove). The agent then
   * gives it the identity of its new label set and policies follow.
   */
  async relabel(ref: string, set: Labels, remove: readonly string[]): Promise<Endpoint> {
    const labels = checkLabels(set);
    return this.state.lockedAsync(async () => {
      const ep = this.find(ref);
      if (!ep) throw new EndpointError(`no endpoint '${ref}' on node ${this.cfg.nodeName} (see \`sluice endpoint list\`)`, 'not_found');
      const next: Endpoint = { ...ep, labels: { ...ep.labels, ...labels } };
      for (const k of remove) delete next.labels[k];
      this.state.saveEndpoint(next);
      return next;
    });
  }

  /**
   * Gives a ready endpoint its (new) identity: record and sl_endpoints entry together, when
   * the endpoint is still the one `seen` (same id, labels and state). Returns true when it
   * wrote. sl_endpoints has this class as its one writer.
   */
  async setIdentity(seen: Readonly<Endpoint>, identity: number): Promise<boolean> {
    return this.state.lockedAsync(async () => {
      const ep = this.list().find((e) => e.id === seen.id);
      if (!ep || ep.state !== 'ready' || JSON.stringify(ep.labels) !== JSON.stringify(seen.labels)) return false;
      const next = { ...ep, identity };
      this.state.saveEndpoint(next);
      writeEndpoint(this.cfg, next.ip, endpointValue(next));
      return true;
    });
  }

  /** Deletes an endpoint by id or NAMESPACE/NAME. */
  async remove(ref: string): Promise<Endpoint> {
    const missing = () => new EndpointError(`no endpoint '${ref}' on node ${this.cfg.nodeName} (see \`sluice endpoint list\`)`, 'not_found');
    if (!this.find(ref)) throw missing(); // before locking: a failed delete creates nothing
    return this.state.lockedAsync(async () => {
      const ep = this.find(ref);
      if (!ep) throw missing();
      await this.finishTeardown(ep);
      return ep;
    });
  }

  /** Deletes the endpoint of (containerId, ifname); undefined when there is none. Idempotent. */
  async removeContainer(containerId: string, ifname: string): Promise<Endpoint | undefined> {
    return this.state.lockedAsync(async () => {
      const ep = this.findByContainer(containerId, ifname);
      if (!ep) return undefined;
      await this.finishTeardown(ep);
      return ep;
    });
  }

  /** Teardown that must complete: throws naming what could not be removed (the record then stays 'deleting'). */
  async finishTeardown(ep: Endpoint): Promise<void> {
    const problems = await this.teardown(ep);
    if (problems.length) throw new EndpointError(`deleting endpoint ${ep.name} was incomplete: ${problems.join('; ')}`);
  }

  /** When `ep`'s pod is gone (netns or device vanished), removes it and returns true. Call with the lock held. */
  async collectIfGone(ep: Endpoint): Promise<boolean> {
    if (!podGone(ep)) return false;
    await this.finishTeardown(ep);
    return true;
  }

  /**
   * Removes everything an endpoint may have: map entry first (stops forwarding to it),
   * its conntrack flows, programs, devices, address, record. Continues past failures and returns them; the
   * record stays (state 'deleting') until every step has succeeded. Call with the lock held.
   */
  async teardown(ep: Endpoint): Promise<string[]> {
    const problems: string[] = [];
    const step = async (what: string, fn: () => unknown) => {
      try {
        await fn();
      } catch (e) {
        problems.push(`${what}: ${(e as Error).message}`);
      }
    };
    if (ep.state !== 'deleting') {
      ep.state = 'deleting';
      this.state.saveEndpoint(ep);
    }
    if (ep.ip) await step('map entry', () => deleteEndpoint(this.cfg, ep.ip));
    // Its id will be reused: flows admitted for it go before its address can be.
    await step('flows', () => removeEndpointFlows(this.cfg, ep.id));
    // Its address will be reused too: its masqueraded flows' replies must not reach the next pod.
    if (ep.ip) await step('nat', () => removeAddressNat(this.cfg, ep.ip));
    const dev = getLink(ep.hostIfname);
    const sameDevice = dev !== undefined && (ep.hostIfindex === 0 || dev.ifindex === ep.hostIfindex);
    await step('programs', () => detachEndpoint(this.cfg, { hostIfname: ep.hostIfname, hostIfindex: dev?.ifindex ?? 0 }, !sameDevice));
    if (sameDevice) await step('veth', () => deleteVeth(ep.hostIfname));
    await step('address', () => this.pool.release(ep.handle));
    if (problems.length === 0) this.state.removeEndpoint(ep.id);
    return problems;
  }

  /** Re-attaches the (re)loaded programs to every ready endpoint's veth and rewrites its entry; returns how many. */
  attachAll(): number {
    let n = 0;
    for (const ep of this.list()) {
      if (ep.state !== 'ready') continue;
      const dev = getLink(ep.hostIfname);
      if (!dev || dev.ifindex !== ep.hostIfindex) continue;
      attachEndpoint(this.cfg, ep);
      writeEndpoint(this.cfg, ep.ip, endpointValue(ep));
      n++;
    }
    return n;
  }
}

function safeNetnsId(path: string): number | undefined {
  try {
    return netnsId(path);
  } catch {
    return undefined;
  }
}

/**
 * True when the pod of `ep` no longer exists: its netns is gone, or its host veth is gone
 * or replaced (a namespace deleted and made again at the same path takes the veth with it).
 * `links` (name → link of this namespace) saves a lookup per endpoint when checking many.
 */
export function podGone(ep: Endpoint, links?: ReadonlyMap<string, { ifindex: number }>): boolean {
  if (ep.state !== 'ready') return false;
  const dev = links ? links.get(ep.hostIfname) : getLink(ep.hostIfname);
  if (!dev || dev.ifindex !== ep.hostIfindex) return true;
  return safeNetnsId(ep.netns) === undefined;
}
