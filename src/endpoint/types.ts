/** An endpoint: one pod interface on this node, as sluice records it. */
import type { Labels } from '../util/labels.js';
import type { PodPort } from './ports.js';

export interface Endpoint {
  id: number;
  /** "namespace/pod" */
  name: string;
  /** Path of the pod's network namespace. */
  netns: string;
  /** Interface name inside the pod. */
  ifname: string;
  ip: string;
  mac: string;
  hostIfname: string;
  hostIfindex: number;
  hostMac: string;
  mtu: number;
  labels: Labels;
  /** Declared container ports (named ports in policies resolve against them). */
  ports?: PodPort[];
  /** Security identity of (namespace, labels), allocated cluster-wide; absent until the agent assigns it. */
  identity?: number;
  /**
   * 'creating' while an add is in progress and 'deleting' once a delete has begun: a crash
   * or a failure leaves them for the next reconciliation to finish.
   */
  state: 'creating' | 'ready' | 'deleting';
  created: string;
  /** The runtime's container id (endpoints made through CNI). */
  containerId?: string;
  /** The IPAM handle holding the address in the store. */
  handle: string;
}

export interface AddEndpointRequest {
  netns: string;
  name?: string;
  labels?: Labels;
  ports?: PodPort[];
  ip?: string;
  ifname?: string;
  /** Set by CNI ADD: makes the add idempotent per (containerId, ifname). */
  containerId?: string;
}

const NAME_PART = /^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/;

/** Parses "ns/name"; both parts are Kubernetes object names. */
export function parseEndpointName(s: string): { namespace: string; pod: string } {
  const parts = s.split('/');
  if (parts.length !== 2 || !parts[0] || !parts[1]) throw new Error(`endpoint name '${s}' is not of the form NAMESPACE/NAME`);
  for (const p of parts) {
    if (!NAME_PART.test(p)) throw new Error(`endpoint name '${s}': '${p}' must be lower-case letters, digits, '-' or '.', starting and ending with a letter or digit`);
  }
  return { namespace: parts[0], pod: parts[1] };
}

const IFNAME = /^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,14}$/;
export function checkIfname(s: string): string {
  if (!IFNAME.test(s) || s === '.' || s === '..') throw new Error(`interface name '${s}' is not valid (1-15 characters, no '/' or spaces)`);
  return s;
}
