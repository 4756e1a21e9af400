/**
 * Kubernetes v1 Services and discovery.k8s.io/v1 EndpointSlices as sluice keeps them:
 * normalised (every default filled in) by parse.ts, stored by store.ts (a Service always with
 * its clusterIP, and its nodePorts when it is a NodePort), turned into this node's frontends
 * by frontends.ts. Pure types.
 */

export type ServiceProtocol = 'TCP' | 'UDP';

export interface ServicePort {
  /** '' when the service has one unnamed port. */
  name: string;
  protocol: ServiceProtocol;
  port: number;
  /** A port number, or the name of a port the backend pods declare. */
  targetPort: number | string;
  /** 0: none (a ClusterIP service; a NodePort one once stored always has one). */
  nodePort: number;
  /** spec.ports[].appProtocol, kept as given (a hint: sluice forwards whatever the protocol). */
  appProtocol?: string;
}

export interface Service {
  namespace: string;
  name: string;
  type: 'ClusterIP' | 'NodePort';
  /** Always set once stored (allocated from serviceCIDR when not given); '' in parsed input that leaves it to the allocator. */
  clusterIP: string;
  externalIPs: string[];
  /** null: no selector (backends from EndpointSlices). `selector: {}` is no selector too, as in Kubernetes. */
  selector: Record<string, string> | null;
  ports: ServicePort[];
  sessionAffinity: 'None' | 'ClientIP';
  /** 10800 by default with ClientIP, 0 with None. */
  affinityTimeoutSeconds: number;
  externalTrafficPolicy: 'Cluster' | 'Local';
  internalTrafficPolicy: 'Cluster' | 'Local';
}

export interface EndpointSliceEndpoint {
  addresses: string[];
  ready: boolean;
  /** '' unknown. */
  nodeName: string;
}

export interface EndpointSlice {
  namespace: string;
  name: string;
  /** Its label kubernetes.io/service-name: the service (of its namespace) it holds backends of. */
  service: string;
  ports: { name: string; protocol: ServiceProtocol; port: number }[];
  endpoints: EndpointSliceEndpoint[];
}

export const serviceKeyOf = (s: { namespace: string; name: string }): string => `${s.namespace}/${s.name}`;

/** The label that ties an EndpointSlice to its service. */
export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';

/** Session affinity's default timeout (Kubernetes: 3 hours). */
export const DEFAULT_AFFINITY_TIMEOUT = 10800;
/** Session affinity's largest timeout (Kubernetes: one day). */
export const MAX_AFFINITY_TIMEOUT = 86400;
