/**
 * The store's keyspace: every key prefix sluice uses and the functions that build and parse
 * its keys, in one place. The keys are a wire format: stores written by earlier versions
 * (a file store on disk, a shared etcd) must keep working, so a key built here must stay
 * byte-for-byte what it was (test/unit/store-keys.test.ts holds the exact strings, and a
 * guard there keeps prefixes from being spelled out anywhere else in src/).
 *
 * Keys are relative to the backend's own prefix (etcd: "/sluice/" by default).
 *
 *   nodes/<node>                        {name, podCIDR, underlayIP, subnet, underlayMAC, mode, updated}  a node's record,
 *                                       kept while the node exists (node/underlay.ts NodeRecord)
 *   health/<node>                       {name, pid, started}  on the agent's lease: the agent is alive
 *   endpoints/<node>/<id>               a pod's address, identity, labels and ports, published by
 *                                       its node's agent (policy/store.ts PublishedEndpoint)
 *   policies/<namespace>/<name>         a normalised NetworkPolicy (JSON)
 *   namespaces/<name>                   {labels}
 *   identities/ids/<n>                  {labels, used}  identity n, the label set it stands for,
 *                                       when an endpoint last asked for it
 *   identities/labels/<sha256>          {id}  index: canonical label set -> identity
 *   ipam/blocks/<a.b.c.d>-<len>         {node}  block ownership
 *   ipam/addrs/<a.b.c.d>-<len>/<ip>     {handle, node}  one allocated address
 *   ipam/handles/<uri-encoded handle>   {ip, block}  idempotency: (container, interface) -> address
 *   prefilter/<a.b.c.d>-<len>           {cidr, id, added}  a denied CIDR
 *   prefilter-next-id                   the last prefilter rule id handed out (outside prefilter/,
 *                                       so listing the rules never sees it)
 *   services/<namespace>/<name>         a normalised Kubernetes Service, its clusterIP and nodePorts
 *                                       allocated (service/types.ts Service)
 *   endpointslices/<namespace>/<name>   a normalised EndpointSlice (service/types.ts EndpointSlice):
 *                                       the backends of a service without a selector
 *   services-allocation                 {updated}  rewritten by every apply that writes a service, so
 *                                       two applies racing for a clusterIP or nodePort conflict
 *                                       (outside services/, so listing the services never sees it)
 */

/** "a.b.c.d/len" as it appears in a key: "a.b.c.d-len". */
const cidrInKey = (cidr: string): string => cidr.replace('/', '-');

// --- nodes and their agents -------------------------------------------------------------

export const NODES = 'nodes/';
export const nodeKey = (node: string): string => `${NODES}${node}`;

export const HEALTH = 'health/';
export const healthKey = (node: string): string => `${HEALTH}${node}`;
/** "health/n1" -> "n1". */
export const nodeOfHealthKey = (key: string): string => key.slice(HEALTH.length);

// --- published endpoints ----------------------------------------------------------------

/** Every node's endpoints, published by its agent: endpoints/<node>/<id>. */
export const ENDPOINTS = 'endpoints/';
/** The prefix of one node's published endpoints: "endpoints/<node>/". */
export const nodeEndpointsPrefix = (node: string): string => `${ENDPOINTS}${node}/`;
export const endpointKey = (node: string, id: number): string => `${nodeEndpointsPrefix(node)}${id}`;
/** The node and endpoint id an endpoint key names (undefined: not an endpoint key). */
export function endpointOfKey(key: string): { node: string; id: number } | undefined {
  if (!key.startsWith(ENDPOINTS)) return undefined;
  const m = /^([^/]+)\/([1-9]\d{0,9})$/.exec(key.slice(ENDPOINTS.length));
  return m ? { node: m[1]!, id: Number(m[2]) } : undefined;
}

// --- policies and namespaces ------------------------------------------------------------

export const POLICIES = 'policies/';
/** The prefix of one namespace's policies: "policies/<namespace>/". */
export const namespacePoliciesPrefix = (namespace: string): string => `${POLICIES}${namespace}/`;
/** The key of the policy `ref` ("namespace/name"). */
export const policyStoreKey = (ref: string): string => `${POLICIES}${ref}`;

export const NAMESPACES = 'namespaces/';
export const namespaceKey = (name: string): string => `${NAMESPACES}${name}`;
/** "namespaces/shop" -> "shop". */
export const namespaceOfKey = (key: string): string => key.slice(NAMESPACES.length);

// --- security identities ----------------------------------------------------------------

export const IDENTITY_IDS = 'identities/ids/';
export const identityKey = (id: number): string => `${IDENTITY_IDS}${id}`;
/** "identities/ids/256" -> 256. */
export const identityOfKey = (key: string): number => Number(key.slice(IDENTITY_IDS.length));

export const IDENTITY_LABELS = 'identities/labels/';
/** The index entry of a canonical label set, by its digest (identity.ts labelsDigest). */
export const identityLabelsKey = (digest: string): string => `${IDENTITY_LABELS}${digest}`;

// --- IPAM -------------------------------------------------------------------------------

export const IPAM_BLOCKS = 'ipam/blocks/';
/** "10.244.1.0/24" -> "ipam/blocks/10.244.1.0-24". */
export const blockKey = (block: string): string => `${IPAM_BLOCKS}${cidrInKey(block)}`;
/** "ipam/blocks/10.244.1.0-24" -> "10.244.1.0/24". */
export const blockOfKey = (key: string): string => key.slice(IPAM_BLOCKS.length).replace('-', '/');

export const IPAM_ADDRS = 'ipam/addrs/';
/** The prefix of a block's allocated addresses: "ipam/addrs/10.244.0.0-24/". */
export const blockAddrsPrefix = (block: string): string => `${IPAM_ADDRS}${cidrInKey(block)}/`;
export const addrKey = (block: string, ip: string): string => `${blockAddrsPrefix(block)}${ip}`;
/** The address of a key under blockAddrsPrefix(block). */
export const ipOfAddrKey = (block: string, key: string): string => key.slice(blockAddrsPrefix(block).length);

export const IPAM_HANDLES = 'ipam/handles/';
/** "c3/eth0" -> "ipam/handles/c3%2Feth0". */
export const handleKey = (handle: string): string => `${IPAM_HANDLES}${encodeURIComponent(handle)}`;
/** "ipam/handles/c3%2Feth0" -> "c3/eth0". */
export const handleOfKey = (key: string): string => decodeURIComponent(key.slice(IPAM_HANDLES.length));
/** The prefix of the handles of a node's endpoints (their handles start with "<node>/"). */
export const nodeHandlesPrefix = (node: string): string => handleKey(`${node}/`);

// --- the XDP prefilter ------------------------------------------------------------------

/** Store keys of denied CIDRs: prefilter/<a.b.c.d>-<len>. */
export const PREFILTER_PREFIX = 'prefilter/';
/** The last rule id handed out (a counter outside PREFILTER_PREFIX, so listing rules never sees it). */
export const PREFILTER_NEXT_ID_KEY = 'prefilter-next-id';
/** "198.18.77.0/24" -> "prefilter/198.18.77.0-24". */
export const prefilterKey = (cidr: string): string => `${PREFILTER_PREFIX}${cidrInKey(cidr)}`;

/**
 * "prefilter/198.18.77.0-24" -> "198.18.77.0/24" as written, not validated (prefilter/cidr.ts
 * cidrOfKey checks it is a normalised CIDR); undefined for a key outside the prefix or without "-".
 */
export function prefilterCidrText(key: string): string | undefined {
  if (!key.startsWith(PREFILTER_PREFIX)) return undefined;
  const rest = key.slice(PREFILTER_PREFIX.length);
  const i = rest.lastIndexOf('-');
  if (i < 0) return undefined;
  return `${rest.slice(0, i)}/${rest.slice(i + 1)}`;
}

// --- services and EndpointSlices --------------------------------------------------------

/** Every Service: services/<namespace>/<name>. */
export const SERVICES = 'services/';
/** The prefix of one namespace's services: "services/<namespace>/". */
export const namespaceServicesPrefix = (namespace: string): string => `${SERVICES}${namespace}/`;
/** The key of the service `ref` ("namespace/name"). */
export const serviceStoreKey = (ref: string): string => `${SERVICES}${ref}`;
/**
 * The key every service apply rewrites in the transaction that writes the services: two
 * concurrent applies both compare it, so the second fails and allocates again (outside
 * SERVICES, so listing the services never sees it).
 */
export const SERVICE_ALLOCATION_KEY = 'services-allocation';

/** Every EndpointSlice: endpointslices/<namespace>/<name>. */
export const ENDPOINT_SLICES = 'endpointslices/';
/** The prefix of one namespace's EndpointSlices: "endpointslices/<namespace>/". */
export const namespaceEndpointSlicesPrefix = (namespace: string): string => `${ENDPOINT_SLICES}${namespace}/`;
/** The key of the EndpointSlice `ref` ("namespace/name"). */
export const endpointSliceStoreKey = (ref: string): string => `${ENDPOINT_SLICES}${ref}`;

/** "services/shop/web" (or "endpointslices/shop/web-1") -> {namespace, name}; undefined for another key or a malformed one. */
export function objectOfKey(prefix: typeof SERVICES | typeof ENDPOINT_SLICES, key: string): { namespace: string; name: string } | undefined {
  if (!key.startsWith(prefix)) return undefined;
  const m = /^([^/]+)\/([^/]+)$/.exec(key.slice(prefix.length));
  return m ? { namespace: m[1]!, name: m[2]! } : undefined;
}
