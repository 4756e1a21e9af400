/**
 * The agent's CNI API (the contract is in src/cni/README.md): add, del, check and gc of
 * endpoints keyed by (containerId, ifname).
 */
import { existsSync } from 'node:fs';
import type { CniAddResponse, CniCheckResponse, CniDelResponse, CniEndpoint, CniGcResponse } from '../api/types.js';
import { endpointValue } from '../endpoint/datapath.js';
import { readEndpoints } from '../maps/endpoints.js';
import type { PodPort } from '../endpoint/ports.js';
import type { Endpoint } from '../endpoint/types.js';
import { addresses, getLink } from '../net/ip.js';
import { linkPin } from '../datapath/attach.js';
import { attachmentsOf, hookName } from '../datapath/attachments.js';
import { netnsPath } from '../net/netns.js';
import type { NodeHandle } from '../node/context.js';
import { ApiError } from './errors.js';
import { object, optLabels, optStr, str, invalid } from './validate.js';

export function cniEndpoint(ep: Endpoint): CniEndpoint {
  return { id: ep.id, name: ep.name, ip: ep.ip, mac: ep.mac, ifname: ep.ifname, netns: ep.netns, hostIfname: ep.hostIfname, mtu: ep.mtu };
}

function unknownNetns(netns: string, e: unknown): ApiError {
  return new ApiError(404, 'unknown_container', `network namespace ${netns} does not exist: ${(e as Error).message}`);
}

export async function cniAdd(node: NodeHandle, raw: unknown): Promise<CniAddResponse> {
  const b = object(raw);
  const containerId = str(b, 'containerId');
  const ifname = str(b, 'ifname');
  const netns = str(b, 'netns');
  const podNamespace = optStr(b, 'podNamespace');
  const podName = optStr(b, 'podName');
  const labels = optLabels(b, 'labels');
  try {
    netnsPath(netns);
  } catch (e) {
    throw unknownNetns(netns, e);
  }
  const name = podName ? `${podNamespace ?? 'default'}/${podName}` : undefined;
  const ep = await node.manager.add({
    netns, ifname, containerId, ...(name ? { name } : {}), ...(labels ? { labels } : {}), ...(b.ports !== undefined ? { ports: b.ports as PodPort[] } : {}),
  });
  const held = await node.pool.lookup(ep.handle);
  return { endpoint: cniEndpoint(ep), gateway: node.cfg.gatewayIP, podCIDR: held?.block ?? '' };
}

export async function cniDel(node: NodeHandle, raw: unknown): Promise<CniDelResponse> {
  const b = object(raw);
  const ep = await node.manager.removeContainer(str(b, 'containerId'), str(b, 'ifname'));
  return { deleted: ep !== undefined, ...(ep ? { endpoint: cniEndpoint(ep) } : {}) };
}

/** What is wrong with a ready endpoint's devices, map entry, programs and address. */
export async function endpointProblems(node: NodeHandle, ep: Endpoint, netns?: string): Promise<string[]> {
  const p: string[] = [];
  if (ep.state !== 'ready') return [`endpoint ${ep.name} is ${ep.state}, not ready`];
  let ns: string | undefined;
  try {
    ns = netnsPath(ep.netns);
  } catch {
    p.push(`its network namespace ${ep.netns} is gone`);
  }
  if (netns && netns !== ep.netns) p.push(`it was made in ${ep.netns}, not ${netns}`);
  const host = getLink(ep.hostIfname);
  if (!host) p.push(`host device ${ep.hostIfname} is missing`);
  else if (host.ifindex !== ep.hostIfindex) p.push(`host device ${ep.hostIfname} has ifindex ${host.ifindex}, expected ${ep.hostIfindex}`);
  if (ns) {
    const pod = getLink(ep.ifname, ns);
    if (!pod) p.push(`interface ${ep.ifname} is missing in the pod`);
    else {
      if (pod.mac !== ep.mac) p.push(`interface ${ep.ifname} has MAC ${pod.mac}, expected ${ep.mac}`);
      if (!addresses(ep.ifname, ns).includes(`${ep.ip}/32`)) p.push(`interface ${ep.ifname} does not have ${ep.ip}/32`);
    }
  }
  const entry = readEndpoints(node.cfg).get(ep.ip);
  if (!entry) p.push(`sl_endpoints has no entry for ${ep.ip}`);
  else if (JSON.stringify(entry) !== JSON.stringify(endpointValue(ep))) p.push(`the sl_endpoints entry of ${ep.ip} differs from the endpoint`);
  for (const a of attachmentsOf({ role: 'pod' })) {
    if (!existsSync(linkPin(node.cfg, 'pod', ep.hostIfname, a.program))) p.push(`${a.program} is not attached to ${ep.hostIfname} ${hookName(a.hook)}`);
  }
  const held = await node.pool.lookup(ep.handle);
  if (!held) p.push(`the store has no address record for ${ep.handle}`);
  else if (held.ip !== ep.ip) p.push(`the store gives ${held.ip} to ${ep.handle}, the endpoint has ${ep.ip}`);
  return p;
}

export async function cniCheck(node: NodeHandle, raw: unknown): Promise<CniCheckResponse> {
  const b = object(raw);
  const containerId = str(b, 'containerId');
  const ifname = str(b, 'ifname');
  const ep = node.manager.findByContainer(containerId, ifname);
  if (!ep) throw new ApiError(404, 'unknown_container', `no endpoint for container ${containerId} interface ${ifname} on node ${node.cfg.nodeName}`);
  const problems = await endpointProblems(node, ep, optStr(b, 'netns'));
  return problems.length ? { ok: false, problems, endpoint: cniEndpoint(ep) } : { ok: true, endpoint: cniEndpoint(ep) };
}

export async function cniGc(node: NodeHandle, raw: unknown): Promise<CniGcResponse> {
  const b = object(raw);
  if (!Array.isArray(b.validAttachments)) throw invalid('"validAttachments" must be a list of {containerId, ifname}');
  const valid = new Set(b.validAttachments.map((a: unknown, i) => {
    const o = object(a, `validAttachments[${i}]`);
    return `${str(o, 'containerId')}\0${str(o, 'ifname')}`;
  }));
  const removed: CniGcResponse['removed'] = [];
  const problems: string[] = [];
  // Only endpoints a runtime made (with a container id) are the runtime's to collect.
  for (const ep of node.manager.list()) {
    if (!ep.containerId || valid.has(`${ep.containerId}\0${ep.ifname}`)) continue;
    try {
      if (await node.manager.removeContainer(ep.containerId, ep.ifname)) {
        removed.push({ containerId: ep.containerId, ifname: ep.ifname, name: ep.name, ip: ep.ip });
      }
    } catch (e) {
      problems.push((e as Error).message);
    }
  }
  if (problems.length) throw new ApiError(500, 'internal', `garbage collection removed ${removed.length} endpoint(s) but failed on others`, problems.join('; '));
  return { removed };
}
