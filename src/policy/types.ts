/**
 * The Kubernetes NetworkPolicy object model (networking.k8s.io/v1), as `parsePolicies`
 * returns it: validated and normalised (defaults filled in). Pure types, no I/O.
 *
 * Normalisation, against the API's wire form:
 * - `metadata.namespace` is always set (`default` when the document had none);
 * - `spec.policyTypes` is always set (inferred as the API defaults it when absent or empty);
 * - `spec.ingress` / `spec.egress` are always lists (absent, null and `[]` mean the same to the API);
 * - every port has its `protocol` (TCP when absent);
 * - optional fields that were absent or null stay absent (a peer's `podSelector: {}` is kept
 *   and differs from no `podSelector`; a rule's absent `from` and `from: []` both match every peer).
 */
import type { Labels } from '../util/labels.js';
import type { PortProtocol } from '../endpoint/ports.js';

export type { Labels } from '../util/labels.js';

export const API_VERSION = 'networking.k8s.io/v1';
export const KIND = 'NetworkPolicy';

/** TCP, UDP or SCTP: the protocols NetworkPolicy knows (the same set a pod's ports use). */
export type Protocol = PortProtocol;
export const PROTOCOLS: readonly Protocol[] = ['TCP', 'UDP', 'SCTP'];

export type PolicyType = 'Ingress' | 'Egress';
export const POLICY_TYPES: readonly PolicyType[] = ['Ingress', 'Egress'];

export type SelectorOperator = 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
export const SELECTOR_OPERATORS: readonly SelectorOperator[] = ['In', 'NotIn', 'Exists', 'DoesNotExist'];

export interface LabelSelectorRequirement {
  key: string;
  operator: SelectorOperator;
  /** Non-empty for In and NotIn; absent for Exists and DoesNotExist. */
  values?: string[];
}

/** matchLabels and matchExpressions are ANDed; an empty selector matches everything. */
export interface LabelSelector {
  matchLabels?: Labels;
  matchExpressions?: LabelSelectorRequirement[];
}

export interface IPBlock {
  /** An IPv4 CIDR, network address with host bits zero, e.g. `172.17.0.0/16`. */
  cidr: string;
  /** CIDRs strictly inside `cidr` that the block does not cover. */
  except?: string[];
}

/**
 * One peer. At least one field is set; `ipBlock` is never combined with a selector.
 * - `podSelector` alone: pods of the policy's namespace that match it;
 * - `namespaceSelector` alone: every pod of the namespaces that match it;
 * - both: pods matching `podSelector` in namespaces matching `namespaceSelector`;
 * - `ipBlock`: addresses in `cidr` and in none of `except`.
 */
export interface NetworkPolicyPeer {
  podSelector?: LabelSelector;
  namespaceSelector?: LabelSelector;
  ipBlock?: IPBlock;
}

export interface NetworkPolicyPort {
  /** Defaults to TCP. */
  protocol: Protocol;
  /** A port number (1-65535) or the name of a port the destination pod declares; absent: every port of the protocol. */
  port?: number | string;
  /** With a numeric `port`: the inclusive range `port`..`endPort`. */
  endPort?: number;
}

export interface NetworkPolicyIngressRule {
  /** Absent or empty: every source. */
  from?: NetworkPolicyPeer[];
  /** Absent or empty: every port. */
  ports?: NetworkPolicyPort[];
}

export interface NetworkPolicyEgressRule {
  /** Absent or empty: every destination. */
  to?: NetworkPolicyPeer[];
  /** Absent or empty: every port. */
  ports?: NetworkPolicyPort[];
}

export interface NetworkPolicySpec {
  /** Which pods of the policy's namespace the policy applies to; `{}` selects all of them. */
  podSelector: LabelSelector;
  /** The directions the policy isolates; always set after parsing. */
  policyTypes: PolicyType[];
  /** Empty: the policy allows no ingress (it only isolates, if policyTypes has Ingress). */
  ingress: NetworkPolicyIngressRule[];
  /** Empty: the policy allows no egress (it only isolates, if policyTypes has Egress). */
  egress: NetworkPolicyEgressRule[];
}

export interface PolicyMetadata {
  /** DNS-1123 subdomain. */
  name: string;
  /** DNS-1123 label; `default` when the document has none. */
  namespace: string;
  labels?: Labels;
  annotations?: Record<string, string>;
}

export interface NetworkPolicy {
  apiVersion: typeof API_VERSION;
  kind: typeof KIND;
  metadata: PolicyMetadata;
  spec: NetworkPolicySpec;
}

/** "namespace/name", the way policies are named in verdicts and errors. */
export function policyKey(p: { metadata: { namespace: string; name: string } }): string {
  return `${p.metadata.namespace}/${p.metadata.name}`;
}
