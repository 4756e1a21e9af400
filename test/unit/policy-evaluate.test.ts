import t from 'tap';
import { createCluster, evaluate, explain, type Connection, type Endpoint, type Pod, type Verdict } from '../../src/policy/evaluate.js';
import { parsePolicies } from '../../src/policy/parse.js';
import type { NetworkPolicy, Protocol } from '../../src/policy/types.js';
import { HEAD, TEST_NETWORK_POLICY } from './policy-fixtures.js';

const NAMESPACES = {
  default: {},
  myproject: { project: 'myproject' },
  other: { project: 'other' },
  alice: { user: 'alice' },
  shop: { team: 'shop', env: 'prod' },
};

const PODS: Pod[] = [
  { namespace: 'default', name: 'db', labels: { role: 'db' }, ip: '10.244.0.10', ports: [{ name: 'redis', port: 6379, protocol: 'TCP' }] },
  { namespace: 'default', name: 'frontend', labels: { role: 'frontend' }, ip: '10.244.0.11' },
  { namespace: 'default', name: 'client', labels: { role: 'client' }, ip: '10.244.0.12', ports: [{ name: 'http', port: 9090, protocol: 'TCP' }] },
  { namespace: 'myproject', name: 'app', labels: { app: 'x' }, ip: '10.244.1.10' },
  { namespace: 'other', name: 'frontend', labels: { role: 'frontend' }, ip: '10.244.2.10' },
  { namespace: 'other', name: 'client', labels: { role: 'client' }, ip: '10.244.2.11' },
  { namespace: 'alice', name: 'client', labels: { role: 'client' }, ip: '10.244.4.10' },
  { namespace: 'alice', name: 'batch', labels: { role: 'batch' }, ip: '10.244.4.11' },
  {
    namespace: 'shop',
    name: 'web',
    labels: { app: 'web' },
    ip: '10.244.3.10',
    ports: [
      { name: 'http', port: 8080, protocol: 'TCP' },
      { name: 'dns', port: 53, protocol: 'UDP' },
      { name: 'sig', port: 2905, protocol: 'SCTP' },
    ],
  },
  { namespace: 'shop', name: 'worker', labels: { app: 'worker', tier: 'back' }, ip: '10.244.3.11' },
];


function pod(ref: string): Endpoint {
  const [namespace, name] = ref.split('/');
  return { namespace: namespace!, name: name! };
}

/** "ns/name" → pod; anything with a digit first → address. */
function end(s: string): Endpoint {
  return /^\d/.test(s) ? s : pod(s);
}

function conn(src: string, dst: string, spec = 'TCP/80'): Connection {
  const [protocol, port] = spec.split('/');
  return { src: end(src), dst: end(dst), protocol: protocol as Protocol, port: Number(port) };
}

function run(policies: string, c: Connection): Verdict {
  return evaluate({ policies: parsePolicies(policies, 'test.yaml'), namespaces: NAMESPACES, pods: PODS }, c);
}

// ---- policies used by several cases ----

const DEFAULT_DENY_INGRESS = `${HEAD}metadata: {name: default-deny-ingress}
spec:
  podSelector: {}
  policyTypes:
  - Ingress
`;

const ALLOW_ALL_INGRESS = `${HEAD}metadata: {name: allow-all-ingress}
spec:
  podSelector: {}
  ingress:
  - {}
  policyTypes:
  - Ingress
`;

const DEFAULT_DENY_EGRESS = `${HEAD}metadata: {name: default-deny-egress}
spec:
  podSelector: {}
  policyTypes:
  - Egress
`;

const ALLOW_ALL_EGRESS = `${HEAD}metadata: {name: allow-all-egress}
spec:
  podSelector: {}
  egress:
  - {}
  policyTypes:
  - Egress
`;

const DEFAULT_DENY_ALL = `${HEAD}metadata: {name: default-deny-all}
spec:
  podSelector: {}
  policyTypes:
  - Ingress
  - Egress
`;


/** The endPort example of the Kubernetes documentation, verbatim. */
const MULTI_PORT_EGRESS = `${HEAD}metadata:
  name: multi-port-egress
  namespace: default
spec:
  podSelector:
    matchLabels:
      role: db
  policyTypes:
    - Egress
  egress:
    - to:
        - ipBlock:
            cidr: 10.0.0.0/24
      ports:
        - protocol: TCP
          port: 32000
          endPort: 32768
`;

/** One peer: pods labelled role=client in namespaces labelled user=alice. */
const AND_PEER = `${HEAD}metadata: {name: and-peer}
spec:
  podSelector: {matchLabels: {role: db}}
  ingress:
  - from:
    - namespaceSelector:
        matchLabels:
          user: alice
      podSelector:
        matchLabels:
          role: client
`;

/** Two peers: every pod of namespaces labelled user=alice, OR pods labelled role=client in the policy's namespace. */
const OR_PEERS = `${HEAD}metadata: {name: or-peers}
spec:
  podSelector: {matchLabels: {role: db}}
  ingress:
  - from:
    - namespaceSelector:
        matchLabels:
          user: alice
    - podSelector:
        matchLabels:
          role: client
`;

const NAMED_INGRESS = `${HEAD}metadata: {name: named, namespace: shop}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress:
  - ports:
    - port: http
    - port: dns
      protocol: UDP
    - port: sig
      protocol: SCTP
`;

const NAMED_EGRESS = `${HEAD}metadata: {name: named-egress}
spec:
  podSelector: {matchLabels: {role: client}}
  policyTypes: [Egress]
  egress:
  - ports:
    - port: http
`;

const IPBLOCK_PODS = `${HEAD}metadata: {name: cluster-cidr, namespace: shop}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress:
  - from:
    - ipBlock:
        cidr: 10.244.0.0/16
        except:
        - 10.244.2.0/24
`;

interface Case {
  name: string;
  policies: string;
  conn: Connection;
  allowed: boolean;
  egress?: Partial<Verdict['egress']>;
  ingress?: Partial<Verdict['ingress']>;
}

const cases: Case[] = [
  // no policy
  { name: 'no policy: pod to pod allowed, neither side isolated', policies: '', conn: conn('default/client', 'default/db'), allowed: true, egress: { pod: 'default/client', isolated: false, isolatedBy: [], allowed: true, allowedBy: [] }, ingress: { pod: 'default/db', isolated: false, allowed: true } },
  { name: 'no policy: address to pod allowed, the address side is not subject to policy', policies: '', conn: conn('192.0.2.1', 'default/db'), allowed: true, egress: { pod: undefined, isolated: false, allowed: true } },
  { name: 'address to address: no side is a pod', policies: DEFAULT_DENY_ALL, conn: conn('192.0.2.1', '198.51.100.1'), allowed: true, egress: { pod: undefined, isolated: false }, ingress: { pod: undefined, isolated: false } },

  // default deny / allow all (Kubernetes docs)
  { name: 'default-deny ingress: pod to pod of the namespace denied', policies: DEFAULT_DENY_INGRESS, conn: conn('default/client', 'default/db'), allowed: false, egress: { isolated: false, allowed: true }, ingress: { isolated: true, isolatedBy: ['default/default-deny-ingress'], allowed: false, allowedBy: [] } },
  { name: 'default-deny ingress: from another namespace denied', policies: DEFAULT_DENY_INGRESS, conn: conn('other/frontend', 'default/frontend'), allowed: false },
  { name: 'default-deny ingress: from outside the cluster denied', policies: DEFAULT_DENY_INGRESS, conn: conn('192.0.2.1', 'default/db'), allowed: false },
  { name: 'default-deny ingress: pods of other namespaces are not isolated', policies: DEFAULT_DENY_INGRESS, conn: conn('default/client', 'myproject/app'), allowed: true, ingress: { isolated: false } },
  { name: 'default-deny ingress: does not restrict egress', policies: DEFAULT_DENY_INGRESS, conn: conn('default/client', '192.0.2.1'), allowed: true },
  { name: 'allow-all ingress alone', policies: ALLOW_ALL_INGRESS, conn: conn('192.0.2.1', 'default/db', 'UDP/9999'), allowed: true, ingress: { isolated: true, allowedBy: [{ policy: 'default/allow-all-ingress', rule: 0 }] } },
  { name: 'allow-all ingress next to default-deny: the union allows', policies: `${DEFAULT_DENY_INGRESS}---\n${ALLOW_ALL_INGRESS}`, conn: conn('other/client', 'default/db', 'SCTP/1'), allowed: true, ingress: { isolatedBy: ['default/default-deny-ingress', 'default/allow-all-ingress'], allowedBy: [{ policy: 'default/allow-all-ingress', rule: 0 }] } },
  { name: 'default-deny egress: to a pod denied by the source', policies: DEFAULT_DENY_EGRESS, conn: conn('default/client', 'default/db'), allowed: false, egress: { isolated: true, allowed: false }, ingress: { isolated: false, allowed: true } },
  { name: 'default-deny egress: to outside denied', policies: DEFAULT_DENY_EGRESS, conn: conn('default/client', '192.0.2.1', 'UDP/53'), allowed: false },
  { name: 'default-deny egress: ingress into the namespace still allowed', policies: DEFAULT_DENY_EGRESS, conn: conn('other/client', 'default/db'), allowed: true, ingress: { isolated: false } },
  { name: 'allow-all egress', policies: `${DEFAULT_DENY_EGRESS}---\n${ALLOW_ALL_EGRESS}`, conn: conn('default/client', '192.0.2.1', 'TCP/443'), allowed: true, egress: { isolated: true, allowedBy: [{ policy: 'default/allow-all-egress', rule: 0 }] } },
  { name: 'default-deny all: denied by both sides', policies: DEFAULT_DENY_ALL, conn: conn('default/client', 'default/db'), allowed: false, egress: { allowed: false }, ingress: { allowed: false } },
  { name: 'default-deny all: pod to outside denied', policies: DEFAULT_DENY_ALL, conn: conn('default/db', '192.0.2.1'), allowed: false },

  // policyTypes and empty rule lists
  {
    name: 'egress rules without policyTypes: Ingress is inferred too, so ingress is denied',
    policies: `${HEAD}metadata: {name: egress-only-oops}\nspec:\n  podSelector: {matchLabels: {role: db}}\n  egress:\n  - {}\n`,
    conn: conn('default/client', 'default/db'),
    allowed: false,
    ingress: { isolated: true, isolatedBy: ['default/egress-only-oops'], allowed: false },
  },
  { name: 'egress rules without policyTypes: egress is allowed by them', policies: `${HEAD}metadata: {name: e}\nspec:\n  podSelector: {matchLabels: {role: db}}\n  egress:\n  - {}\n`, conn: conn('default/db', '192.0.2.1'), allowed: true, egress: { isolated: true, allowedBy: [{ policy: 'default/e', rule: 0 }] } },
  { name: 'egress: [] without policyTypes does not isolate egress', policies: `${HEAD}metadata: {name: e}\nspec:\n  podSelector: {}\n  egress: []\n`, conn: conn('default/db', '192.0.2.1'), allowed: true, egress: { isolated: false } },
  { name: 'ingress: [] isolates and allows nothing', policies: `${HEAD}metadata: {name: i}\nspec:\n  podSelector: {}\n  ingress: []\n`, conn: conn('default/client', 'default/db'), allowed: false, ingress: { isolated: true, allowed: false } },
  { name: 'ingress: [{}] allows everything', policies: `${HEAD}metadata: {name: i}\nspec:\n  podSelector: {}\n  ingress: [{}]\n`, conn: conn('192.0.2.1', 'default/db', 'UDP/5000'), allowed: true },
  { name: 'policyTypes [Ingress] ignores egress rules: egress not isolated', policies: `${HEAD}metadata: {name: i}\nspec:\n  podSelector: {}\n  policyTypes: [Ingress]\n  ingress: [{}]\n  egress:\n  - to: [{ipBlock: {cidr: 10.0.0.0/8}}]\n`, conn: conn('default/db', '192.0.2.1'), allowed: true, egress: { isolated: false } },
  { name: 'policyTypes [Egress] ignores ingress rules: ingress not isolated', policies: `${HEAD}metadata: {name: e}\nspec:\n  podSelector: {}\n  policyTypes: [Egress]\n  egress: [{}]\n  ingress: []\n`, conn: conn('192.0.2.1', 'default/db'), allowed: true, ingress: { isolated: false } },

  // test-network-policy
  { name: 'test-network-policy: frontend pod of the namespace to 6379 allowed', policies: TEST_NETWORK_POLICY, conn: conn('default/frontend', 'default/db', 'TCP/6379'), allowed: true, ingress: { allowedBy: [{ policy: 'default/test-network-policy', rule: 0 }] } },
  { name: 'test-network-policy: other port denied', policies: TEST_NETWORK_POLICY, conn: conn('default/frontend', 'default/db', 'TCP/6380'), allowed: false },
  { name: 'test-network-policy: UDP 6379 denied', policies: TEST_NETWORK_POLICY, conn: conn('default/frontend', 'default/db', 'UDP/6379'), allowed: false },
  { name: 'test-network-policy: a pod of a namespace labelled project=myproject allowed', policies: TEST_NETWORK_POLICY, conn: conn('myproject/app', 'default/db', 'TCP/6379'), allowed: true },
  { name: 'test-network-policy: role=frontend of another namespace denied (podSelector alone is the policy namespace)', policies: TEST_NETWORK_POLICY, conn: conn('other/frontend', 'default/db', 'TCP/6379'), allowed: false },
  { name: 'test-network-policy: a pod of the namespace without role=frontend denied', policies: TEST_NETWORK_POLICY, conn: conn('default/client', 'default/db', 'TCP/6379'), allowed: false },
  { name: 'test-network-policy: address in 172.17.0.0/16 allowed', policies: TEST_NETWORK_POLICY, conn: conn('172.17.0.5', 'default/db', 'TCP/6379'), allowed: true },
  { name: 'test-network-policy: address in the except 172.17.1.0/24 denied', policies: TEST_NETWORK_POLICY, conn: conn('172.17.1.5', 'default/db', 'TCP/6379'), allowed: false },
  { name: 'test-network-policy: address outside the cidr denied', policies: TEST_NETWORK_POLICY, conn: conn('172.18.0.5', 'default/db', 'TCP/6379'), allowed: false },
  { name: 'test-network-policy: db egress to 10.0.0.0/24 port 5978 allowed', policies: TEST_NETWORK_POLICY, conn: conn('default/db', '10.0.0.5', 'TCP/5978'), allowed: true, egress: { isolated: true, allowedBy: [{ policy: 'default/test-network-policy', rule: 0 }] } },
  { name: 'test-network-policy: db egress to another port denied', policies: TEST_NETWORK_POLICY, conn: conn('default/db', '10.0.0.5', 'TCP/5979'), allowed: false },
  { name: 'test-network-policy: db egress outside 10.0.0.0/24 denied', policies: TEST_NETWORK_POLICY, conn: conn('default/db', '10.0.1.5', 'TCP/5978'), allowed: false },
  { name: 'test-network-policy: db egress to a pod denied (its IP is outside the block)', policies: TEST_NETWORK_POLICY, conn: conn('default/db', 'default/frontend', 'TCP/5978'), allowed: false, egress: { allowed: false }, ingress: { isolated: false } },
  { name: 'test-network-policy: pods without role=db are not isolated', policies: TEST_NETWORK_POLICY, conn: conn('default/client', 'default/frontend', 'TCP/1'), allowed: true },

  // endPort
  { name: 'endPort: the first port of the range', policies: MULTI_PORT_EGRESS, conn: conn('default/db', '10.0.0.1', 'TCP/32000'), allowed: true },
  { name: 'endPort: the last port of the range (inclusive)', policies: MULTI_PORT_EGRESS, conn: conn('default/db', '10.0.0.1', 'TCP/32768'), allowed: true },
  { name: 'endPort: inside the range', policies: MULTI_PORT_EGRESS, conn: conn('default/db', '10.0.0.1', 'TCP/32500'), allowed: true },
  { name: 'endPort: just below the range', policies: MULTI_PORT_EGRESS, conn: conn('default/db', '10.0.0.1', 'TCP/31999'), allowed: false },
  { name: 'endPort: just above the range', policies: MULTI_PORT_EGRESS, conn: conn('default/db', '10.0.0.1', 'TCP/32769'), allowed: false },
  { name: 'endPort: another protocol', policies: MULTI_PORT_EGRESS, conn: conn('default/db', '10.0.0.1', 'UDP/32000'), allowed: false },

  // one peer with both selectors (AND) vs two peers (OR)
  { name: 'AND peer: role=client in a namespace labelled user=alice allowed', policies: AND_PEER, conn: conn('alice/client', 'default/db'), allowed: true },
  { name: 'AND peer: another pod of the alice namespace denied', policies: AND_PEER, conn: conn('alice/batch', 'default/db'), allowed: false },
  { name: "AND peer: role=client of the policy's namespace denied (the namespaceSelector does not match)", policies: AND_PEER, conn: conn('default/client', 'default/db'), allowed: false },
  { name: 'AND peer: role=client of another namespace denied', policies: AND_PEER, conn: conn('other/client', 'default/db'), allowed: false },
  { name: 'OR peers: any pod of the alice namespace allowed', policies: OR_PEERS, conn: conn('alice/batch', 'default/db'), allowed: true },
  { name: "OR peers: role=client of the policy's namespace allowed", policies: OR_PEERS, conn: conn('default/client', 'default/db'), allowed: true },
  { name: 'OR peers: role=client of another namespace denied', policies: OR_PEERS, conn: conn('other/client', 'default/db'), allowed: false },

  // peers
  { name: 'namespaceSelector {} alone: pods of every namespace', policies: `${HEAD}metadata: {name: p}\nspec:\n  podSelector: {}\n  ingress:\n  - from: [{namespaceSelector: {}}]\n`, conn: conn('shop/worker', 'default/db'), allowed: true },
  { name: 'namespaceSelector {} alone: not addresses outside the cluster', policies: `${HEAD}metadata: {name: p}\nspec:\n  podSelector: {}\n  ingress:\n  - from: [{namespaceSelector: {}}]\n`, conn: conn('192.0.2.1', 'default/db'), allowed: false },
  { name: "podSelector {} alone: pods of the policy's namespace", policies: `${HEAD}metadata: {name: p}\nspec:\n  podSelector: {}\n  ingress:\n  - from: [{podSelector: {}}]\n`, conn: conn('default/client', 'default/db'), allowed: true },
  { name: 'podSelector {} alone: not pods of other namespaces', policies: `${HEAD}metadata: {name: p}\nspec:\n  podSelector: {}\n  ingress:\n  - from: [{podSelector: {}}]\n`, conn: conn('other/client', 'default/db'), allowed: false },
  { name: 'namespaceSelector {} with podSelector {}: every pod, no address', policies: `${HEAD}metadata: {name: p}\nspec:\n  podSelector: {}\n  ingress:\n  - from: [{namespaceSelector: {}, podSelector: {}}]\n`, conn: conn('10.9.9.9', 'default/db'), allowed: false },
  { name: 'from absent: every source, addresses included', policies: `${HEAD}metadata: {name: p}\nspec:\n  podSelector: {}\n  ingress:\n  - ports: [{port: 80}]\n`, conn: conn('192.0.2.1', 'default/db'), allowed: true },
  { name: 'from: [] is the same as absent', policies: `${HEAD}metadata: {name: p}\nspec:\n  podSelector: {}\n  ingress:\n  - from: []\n    ports: [{port: 80}]\n`, conn: conn('192.0.2.1', 'default/db'), allowed: true },
  { name: 'to: [] matches every destination', policies: `${HEAD}metadata: {name: p}\nspec:\n  podSelector: {}\n  policyTypes: [Egress]\n  egress:\n  - to: []\n    ports: [{port: 443}]\n`, conn: conn('default/db', '203.0.113.9', 'TCP/443'), allowed: true },
  { name: 'namespace selected by the automatic kubernetes.io/metadata.name label', policies: `${HEAD}metadata: {name: p}\nspec:\n  podSelector: {}\n  ingress:\n  - from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: myproject}}}]\n`, conn: conn('myproject/app', 'default/db'), allowed: true },
  { name: 'automatic namespace label: other namespaces do not match', policies: `${HEAD}metadata: {name: p}\nspec:\n  podSelector: {}\n  ingress:\n  - from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: myproject}}}]\n`, conn: conn('other/client', 'default/db'), allowed: false },
  { name: 'namespaceSelector NotIn matches namespaces without the key', policies: `${HEAD}metadata: {name: p}\nspec:\n  podSelector: {}\n  ingress:\n  - from: [{namespaceSelector: {matchExpressions: [{key: project, operator: NotIn, values: [other]}]}}]\n`, conn: conn('shop/worker', 'default/db'), allowed: true },
  { name: 'namespaceSelector NotIn excludes the listed value', policies: `${HEAD}metadata: {name: p}\nspec:\n  podSelector: {}\n  ingress:\n  - from: [{namespaceSelector: {matchExpressions: [{key: project, operator: NotIn, values: [other]}]}}]\n`, conn: conn('other/client', 'default/db'), allowed: false },

  // ports
  { name: 'ports absent: every port of every protocol', policies: `${HEAD}metadata: {name: p}\nspec:\n  podSelector: {}\n  ingress:\n  - from: [{podSelector: {}}]\n`, conn: conn('default/client', 'default/db', 'SCTP/9'), allowed: true },
  { name: 'ports: [] is the same as absent', policies: `${HEAD}metadata: {name: p}\nspec:\n  podSelector: {}\n  ingress:\n  - ports: []\n`, conn: conn('default/client', 'default/db', 'UDP/9'), allowed: true },
  { name: 'protocol without port: every port of that protocol', policies: `${HEAD}metadata: {name: p}\nspec:\n  podSelector: {}\n  ingress:\n  - ports: [{protocol: UDP}]\n`, conn: conn('default/client', 'default/db', 'UDP/65535'), allowed: true },
  { name: 'protocol without port: not another protocol', policies: `${HEAD}metadata: {name: p}\nspec:\n  podSelector: {}\n  ingress:\n  - ports: [{protocol: UDP}]\n`, conn: conn('default/client', 'default/db', 'TCP/53'), allowed: false },
  { name: 'port without protocol is TCP', policies: `${HEAD}metadata: {name: p}\nspec:\n  podSelector: {}\n  ingress:\n  - ports: [{port: 53}]\n`, conn: conn('default/client', 'default/db', 'UDP/53'), allowed: false },
  { name: 'SCTP port', policies: `${HEAD}metadata: {name: p}\nspec:\n  podSelector: {}\n  ingress:\n  - ports: [{port: 2905, protocol: SCTP}]\n`, conn: conn('default/client', 'default/db', 'SCTP/2905'), allowed: true },
  { name: 'a peer and a port must both match', policies: `${HEAD}metadata: {name: p}\nspec:\n  podSelector: {}\n  ingress:\n  - from: [{podSelector: {matchLabels: {role: frontend}}}]\n  - ports: [{port: 22}]\n`, conn: conn('default/client', 'default/db', 'TCP/80'), allowed: false },

  // named ports
  { name: 'named port (ingress): resolves against the destination pod', policies: NAMED_INGRESS, conn: conn('default/client', 'shop/web', 'TCP/8080'), allowed: true },
  { name: 'named port (ingress): another number denied', policies: NAMED_INGRESS, conn: conn('default/client', 'shop/web', 'TCP/80'), allowed: false },
  { name: 'named port (ingress): UDP name', policies: NAMED_INGRESS, conn: conn('default/client', 'shop/web', 'UDP/53'), allowed: true },
  { name: 'named port (ingress): SCTP name', policies: NAMED_INGRESS, conn: conn('default/client', 'shop/web', 'SCTP/2905'), allowed: true },
  { name: "named port (ingress): the declared port's protocol must match", policies: NAMED_INGRESS, conn: conn('default/client', 'shop/web', 'TCP/53'), allowed: false },
  { name: 'named port (ingress): the source pod\'s ports do not count', policies: NAMED_INGRESS, conn: conn('default/client', 'shop/web', 'TCP/9090'), allowed: false },
  { name: 'named port (egress): resolves against the destination pod', policies: NAMED_EGRESS, conn: conn('default/client', 'shop/web', 'TCP/8080'), allowed: true },
  { name: "named port (egress): the source's own declaration of the name does not count", policies: NAMED_EGRESS, conn: conn('default/client', 'shop/web', 'TCP/9090'), allowed: false },
  { name: 'named port (egress): a destination pod without the name', policies: NAMED_EGRESS, conn: conn('default/client', 'default/db', 'TCP/8080'), allowed: false },
  { name: 'named port (egress): an address destination matches no named port', policies: NAMED_EGRESS, conn: conn('default/client', '192.0.2.1', 'TCP/8080'), allowed: false },

  // ipBlock on pod IPs
  { name: "ipBlock matches pods' IPs (as the upstream conformance suite expects)", policies: IPBLOCK_PODS, conn: conn('default/client', 'shop/web'), allowed: true, ingress: { allowedBy: [{ policy: 'shop/cluster-cidr', rule: 0 }] } },
  { name: "ipBlock except excludes a pod's IP", policies: IPBLOCK_PODS, conn: conn('other/client', 'shop/web'), allowed: false },
  { name: 'ipBlock on egress to a pod matches it', policies: `${HEAD}metadata: {name: p}\nspec:\n  podSelector: {}\n  policyTypes: [Egress]\n  egress:\n  - to: [{ipBlock: {cidr: 10.244.3.10/32}}]\n`, conn: conn('default/client', 'shop/web'), allowed: true },
  { name: 'ipBlock on egress: a pod outside the block is not matched', policies: `${HEAD}metadata: {name: p}\nspec:\n  podSelector: {}\n  policyTypes: [Egress]\n  egress:\n  - to: [{ipBlock: {cidr: 10.244.3.10/32}}]\n`, conn: conn('default/client', 'shop/worker'), allowed: false },
  { name: 'an IP in both cidr and except is excluded (upstream: overlapping cidr and except)', policies: `${HEAD}metadata: {name: p}\nspec:\n  podSelector: {}\n  policyTypes: [Egress]\n  egress:\n  - to: [{ipBlock: {cidr: 10.244.3.0/24, except: [10.244.3.10/32]}}]\n`, conn: conn('default/client', 'shop/web'), allowed: false },
  { name: 'and its neighbour, in cidr only, is allowed', policies: `${HEAD}metadata: {name: p}\nspec:\n  podSelector: {}\n  policyTypes: [Egress]\n  egress:\n  - to: [{ipBlock: {cidr: 10.244.3.0/24, except: [10.244.3.10/32]}}]\n`, conn: conn('default/client', 'shop/worker'), allowed: true },
  { name: 'a pod excluded by except is still allowed by a selector peer', policies: `${HEAD}metadata: {name: p, namespace: shop}\nspec:\n  podSelector: {matchLabels: {app: web}}\n  ingress:\n  - from:\n    - ipBlock: {cidr: 10.244.0.0/16, except: [10.244.2.0/24]}\n    - namespaceSelector: {matchLabels: {project: other}}\n`, conn: conn('other/client', 'shop/web'), allowed: true },

  // union, selection, namespaces
  {
    name: 'union: every allowing rule of every policy is reported',
    policies: `${HEAD}metadata: {name: a}\nspec:\n  podSelector: {matchLabels: {role: db}}\n  ingress:\n  - ports: [{port: 1}]\n  - ports: [{port: 6379}]\n---\n${HEAD}metadata: {name: b}\nspec:\n  podSelector: {}\n  ingress:\n  - from: [{podSelector: {matchLabels: {role: client}}}]\n`,
    conn: conn('default/client', 'default/db', 'TCP/6379'),
    allowed: true,
    ingress: { isolatedBy: ['default/a', 'default/b'], allowedBy: [{ policy: 'default/a', rule: 1 }, { policy: 'default/b', rule: 0 }] },
  },
  { name: 'union: a policy allowing nothing does not take away what another allows', policies: `${TEST_NETWORK_POLICY}---\n${DEFAULT_DENY_ALL}`, conn: conn('default/frontend', 'default/db', 'TCP/6379'), allowed: false, egress: { isolated: true, allowed: false }, ingress: { allowed: true } },
  { name: 'a policy selects only pods of its own namespace', policies: `${HEAD}metadata: {name: deny, namespace: other}\nspec:\n  podSelector: {}\n`, conn: conn('default/client', 'default/db'), allowed: true, ingress: { isolated: false } },
  { name: 'podSelector with expressions: an unselected pod is not isolated', policies: `${HEAD}metadata: {name: p, namespace: shop}\nspec:\n  podSelector: {matchExpressions: [{key: tier, operator: DoesNotExist}]}\n`, conn: conn('default/client', 'shop/worker'), allowed: true, ingress: { isolated: false } },
  { name: 'podSelector with expressions: a selected pod is isolated', policies: `${HEAD}metadata: {name: p, namespace: shop}\nspec:\n  podSelector: {matchExpressions: [{key: tier, operator: DoesNotExist}]}\n`, conn: conn('default/client', 'shop/web'), allowed: false, ingress: { isolated: true } },
  { name: 'egress allowed but ingress denied: denied', policies: `${ALLOW_ALL_EGRESS}---\n${DEFAULT_DENY_INGRESS}`, conn: conn('default/client', 'default/db'), allowed: false, egress: { isolated: true, allowed: true }, ingress: { isolated: true, allowed: false } },
  { name: 'a pod to itself is decided by policy like any other connection', policies: `${HEAD}metadata: {name: p}\nspec:\n  podSelector: {}\n  ingress:\n  - from: [{podSelector: {matchLabels: {role: frontend}}}]\n`, conn: conn('default/db', 'default/db'), allowed: false },
];

t.test('reference evaluator cases', async (t) => {
  t.ok(cases.length >= 40, `${cases.length} cases`);
  for (const c of cases) {
    const v = run(c.policies, c.conn);
    t.equal(v.allowed, c.allowed, c.name);
    t.equal(v.allowed, v.egress.allowed && v.ingress.allowed, `${c.name}: allowed is egress AND ingress`);
    for (const side of ['egress', 'ingress'] as const) {
      const want = c[side];
      if (want === undefined) continue;
      for (const [k, value] of Object.entries(want)) t.same(v[side][k as keyof Verdict['egress']], value, `${c.name}: ${side}.${k}`);
    }
  }
});

t.test('explain says what decided, rule by rule', async (t) => {
  const cluster = createCluster({ policies: parsePolicies(TEST_NETWORK_POLICY, 'x'), namespaces: NAMESPACES, pods: PODS });
  t.same(explain(cluster, conn('default/frontend', 'default/db', 'TCP/6379')), [
    'connection pod default/frontend (10.244.0.11) → pod default/db (10.244.0.10) TCP/6379',
    'egress of source pod default/frontend: not isolated (no policy with Egress in policyTypes selects it): allowed',
    '  default/test-network-policy (podSelector role=db) has Egress but does not select it',
    'ingress of destination pod default/db: isolated by default/test-network-policy',
    '  default/test-network-policy ingress[0]: allows',
    '    from[0] ipBlock 172.17.0.0/16 except 172.17.1.0/24: 10.244.0.11 (pod default/frontend) is outside 172.17.0.0/16',
    '    from[1] namespaceSelector project=myproject: namespace default {kubernetes.io/metadata.name=default} does not match',
    '    from[2] podSelector role=frontend (namespace default): matches pod default/frontend',
    '    ports[0] TCP/6379: matches',
    '  → ingress allowed by default/test-network-policy ingress[0]',
    'verdict: allowed',
  ]);
  t.same(explain(cluster, conn('172.17.1.9', 'default/db', 'UDP/6379')), [
    'connection address 172.17.1.9 → pod default/db (10.244.0.10) UDP/6379',
    'egress: the source is an address, not subject to policy: allowed',
    'ingress of destination pod default/db: isolated by default/test-network-policy',
    '  default/test-network-policy ingress[0]: does not allow',
    '    from[0] ipBlock 172.17.0.0/16 except 172.17.1.0/24: 172.17.1.9 is in except 172.17.1.0/24',
    "    from[1] namespaceSelector project=myproject: selects pods only, and 172.17.1.9 is no pod's address",
    "    from[2] podSelector role=frontend (namespace default): selects pods only, and 172.17.1.9 is no pod's address",
    '    ports[0] TCP/6379: the connection is UDP',
    '  → ingress denied: no rule of default/test-network-policy allows it',
    'verdict: denied by ingress',
  ]);
  t.ok(explain(cluster, conn('default/frontend', 'default/db', 'TCP/6380')).includes("    ports[0] TCP/6379: the connection's port is 6380"));
  t.same(explain(cluster, conn('default/db', 'other/client', 'TCP/5978')).slice(1, 6), [
    'egress of source pod default/db: isolated by default/test-network-policy',
    '  default/test-network-policy egress[0]: does not allow',
    '    to[0] ipBlock 10.0.0.0/24: 10.244.2.11 (pod other/client) is outside 10.0.0.0/24',
    '    ports[0] TCP/5978: matches',
    '  → egress denied: no rule of default/test-network-policy allows it',
  ]);
});

t.test('explain: empty policies, rules without peers or ports, named ports, ranges', async (t) => {
  const policies = parsePolicies(`${DEFAULT_DENY_ALL}---\n${ALLOW_ALL_EGRESS}---\n${NAMED_INGRESS}---\n${MULTI_PORT_EGRESS}`, 'x');
  const cluster = createCluster({ policies, namespaces: NAMESPACES, pods: PODS });
  t.same(explain(cluster, conn('default/client', 'default/db')), [
    'connection pod default/client (10.244.0.12) → pod default/db (10.244.0.10) TCP/80',
    'egress of source pod default/client: isolated by default/default-deny-all, default/allow-all-egress',
    '  default/multi-port-egress (podSelector role=db) has Egress but does not select it',
    '  default/default-deny-all: no egress rules (allows nothing)',
    '  default/allow-all-egress egress[0]: allows',
    '    no to: every destination',
    '    no ports: every port',
    '  → egress allowed by default/allow-all-egress egress[0]',
    'ingress of destination pod default/db: isolated by default/default-deny-all',
    '  default/default-deny-all: no ingress rules (allows nothing)',
    '  → ingress denied: no rule of default/default-deny-all allows it',
    'verdict: denied by ingress',
  ]);
  t.same(explain(cluster, conn('other/client', 'shop/web', 'TCP/53')).slice(3, 9), [
    '  shop/named ingress[0]: does not allow',
    '    no from: every source',
    "    ports[0] TCP/http: pod shop/web declares 'http' as TCP/8080",
    '    ports[1] UDP/dns: the connection is TCP',
    '    ports[2] SCTP/sig: the connection is TCP',
    '  → ingress denied: no rule of shop/named allows it',
  ]);
  t.same(explain(cluster, conn('default/db', '10.0.0.1', 'TCP/40000')).slice(1, 11), [
    'egress of source pod default/db: isolated by default/default-deny-all, default/allow-all-egress, default/multi-port-egress',
    '  default/default-deny-all: no egress rules (allows nothing)',
    '  default/allow-all-egress egress[0]: allows',
    '    no to: every destination',
    '    no ports: every port',
    '  default/multi-port-egress egress[0]: does not allow',
    '    to[0] ipBlock 10.0.0.0/24: 10.0.0.1 is inside',
    '    ports[0] TCP/32000-32768: port 40000 is not in the range',
    '  → egress allowed by default/allow-all-egress egress[0]',
    'ingress: the destination is an address, not subject to policy: allowed',
  ]);
  const named = createCluster({ policies: parsePolicies(NAMED_EGRESS, 'x'), namespaces: NAMESPACES, pods: PODS });
  t.same(explain(named, conn('default/client', '192.0.2.7', 'TCP/8080')).slice(4, 5), [
    '    ports[0] TCP/http: a named port matches only a pod\'s declared port, and the destination is an address',
  ]);
  t.same(explain(named, conn('default/client', 'default/db', 'TCP/8080')).slice(4, 5), ["    ports[0] TCP/http: pod default/db declares no port named 'http'"]);
  t.match(explain(named, conn('default/client', 'default/client', 'TCP/9090')), ["connection pod default/client (10.244.0.12) → pod default/client (10.244.0.12) TCP/9090"]);
});

t.test('namespaces always carry kubernetes.io/metadata.name, set automatically', async (t) => {
  const cluster = createCluster({ policies: [], namespaces: { a: { x: 'y' } }, pods: [{ namespace: 'b', name: 'p', ip: '10.0.0.1' }] });
  t.same(cluster.namespace('a'), { x: 'y', 'kubernetes.io/metadata.name': 'a' });
  t.same(cluster.namespace('b'), { 'kubernetes.io/metadata.name': 'b' }, "a pod's namespace need not be listed");
  t.same(cluster.namespace('c'), { 'kubernetes.io/metadata.name': 'c' });
  t.doesNotThrow(() => createCluster({ policies: [], namespaces: { a: { 'kubernetes.io/metadata.name': 'a' } }, pods: [] }), 'giving the right value is fine');
});

t.test('a cluster is built once and evaluated many times; its input is validated', async (t) => {
  const cluster = createCluster({ policies: parsePolicies(TEST_NETWORK_POLICY, 'x'), namespaces: NAMESPACES, pods: PODS });
  t.equal(evaluate(cluster, conn('default/frontend', 'default/db', 'TCP/6379')).allowed, true);
  t.equal(evaluate(cluster, conn('default/client', 'default/db', 'TCP/6379')).allowed, false);
  t.throws(
    () =>
      createCluster({
        policies: [],
        namespaces: { Bad: {}, a: { 'kubernetes.io/metadata.name': 'b' }, c: { k: 'bad value' } },
        pods: [
          { namespace: 'a', name: 'x', ip: '10.0.0.1' },
          { namespace: 'a', name: 'x', ip: '10.0.0.2' },
          { namespace: 'a', name: 'y', ip: '10.0.0.1' },
          { namespace: 'a', name: 'z', ip: '10.0.0.256' },
          { namespace: 'a', name: 'w', ip: '10.0.0.9', labels: { 'a b': 'c' } },
          { namespace: 'a', name: 'v', ip: '10.0.0.10', ports: [{ name: 'HTTP', port: 80, protocol: 'TCP' }] },
          { namespace: 'a', name: 'V', ip: '10.0.0.11' },
        ],
      }),
    {
      message: [
        'invalid cluster for policy evaluation:',
        "  namespace: 'Bad' is not a valid DNS-1123 label: at most 63 lower-case letters, digits and '-', starting and ending with a letter or digit",
        "  namespace a: label kubernetes.io/metadata.name is 'b', but it is always the namespace's name",
        "  namespace c: label 'k': value 'bad value' must be at most 63 characters of letters, digits, '-', '_' or '.', starting and ending with a letter or digit",
        '  pod a/x is given twice',
        "  pod a/y: IP 10.0.0.1 is also pod a/x's",
        "  pod a/z: '10.0.0.256' is not an IPv4 address",
        "  pod a/w: label key 'a b': the name must be 1-63 characters of letters, digits, '-', '_' or '.', starting and ending with a letter or digit",
        '  pod a/v: ports[0].name "HTTP" is not a valid port name (at most 15 lower-case letters, digits and \'-\', with at least one letter)',
        "  pod a/V: name 'V' is not a valid DNS-1123 subdomain: at most 253 lower-case letters, digits, '-' and '.', each '.'-separated part starting and ending with a letter or digit",
      ].join('\n'),
    },
  );
});

t.test('connections are validated', async (t) => {
  const cluster = createCluster({ policies: [], namespaces: NAMESPACES, pods: PODS });
  t.throws(() => evaluate(cluster, conn('default/nope', 'default/db')), { message: 'connection source: there is no pod default/nope' });
  t.throws(() => evaluate(cluster, conn('default/db', '10.244.0.11')), { message: 'connection destination: 10.244.0.11 is the IP of pod default/frontend: give the pod as {namespace, name}' });
  t.throws(() => evaluate(cluster, { src: 'default/db', dst: '1.2.3.4', protocol: 'TCP', port: 1 }), { message: "connection source: 'default/db' is not an IPv4 address (a pod is given as {namespace, name})" });
  t.throws(() => evaluate(cluster, conn('1.2.3.4', 'default/db', 'TCP/0')), { message: 'connection port must be from 1 to 65535, got 0' });
  t.throws(() => evaluate(cluster, conn('1.2.3.4', 'default/db', 'ICMP/1')), { message: 'connection protocol must be TCP, UDP or SCTP, got "ICMP"' });
});

t.test('hand-built policies are validated and defaulted like parsed ones', async (t) => {
  const wire = { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: 'e' }, spec: { podSelector: {}, egress: [{}] } };
  const cluster = createCluster({ policies: [wire as unknown as NetworkPolicy], namespaces: NAMESPACES, pods: PODS });
  t.same(cluster.policies[0]!.spec.policyTypes, ['Ingress', 'Egress'], 'policyTypes inferred as the API does');
  t.equal(evaluate(cluster, conn('default/client', 'default/db')).ingress.allowed, false, 'so ingress is isolated');
  const bad = { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: 'b', namespace: 'x' }, spec: { podSelector: {}, ingress: [{ from: [{ ipBlock: { cidr: '10.0.0.0/8', except: ['11.0.0.0/8'] } }] }] } };
  t.throws(() => createCluster({ policies: [bad as unknown as NetworkPolicy], pods: [] }), {
    message: "invalid cluster for policy evaluation:\n  policy 1 (x/b): spec.ingress[0].from[0].ipBlock.except[0]: '11.0.0.0/8' is not strictly inside cidr 10.0.0.0/8",
  });
});

t.test('invariants over every pair of ends with all the example policies together', async (t) => {
  const all = [DEFAULT_DENY_INGRESS, ALLOW_ALL_EGRESS, TEST_NETWORK_POLICY, MULTI_PORT_EGRESS, AND_PEER, NAMED_INGRESS, NAMED_EGRESS, IPBLOCK_PODS].join('---\n');
  const cluster = createCluster({ policies: parsePolicies(all, 'all'), namespaces: NAMESPACES, pods: PODS });
  const ends: Endpoint[] = [...PODS.map((p) => ({ namespace: p.namespace, name: p.name })), '172.17.0.9', '172.17.1.9', '10.0.0.7', '192.0.2.1'];
  const specs: [Protocol, number][] = [['TCP', 6379], ['TCP', 8080], ['UDP', 53], ['TCP', 32000], ['SCTP', 2905], ['TCP', 5978]];
  let checked = 0;
  let allowed = 0;
  for (const src of ends) {
    for (const dst of ends) {
      for (const [protocol, port] of specs) {
        const v = evaluate(cluster, { src, dst, protocol, port });
        for (const side of [v.egress, v.ingress]) {
          if (side.isolated !== side.isolatedBy.length > 0) t.fail('isolated iff isolatedBy');
          if (!side.isolated && (!side.allowed || side.allowedBy.length > 0)) t.fail('not isolated: allowed, by no rule');
          if (side.isolated && side.allowed !== side.allowedBy.length > 0) t.fail('isolated: allowed iff some rule allows');
          if (side.allowedBy.some((r) => !side.isolatedBy.includes(r.policy))) t.fail('allowing policies select the pod');
        }
        if (v.allowed !== (v.egress.allowed && v.ingress.allowed)) t.fail('allowed = egress and ingress');
        if (typeof src === 'string' && v.egress.isolated) t.fail('an address source is never isolated');
        if (typeof dst === 'string' && v.ingress.isolated) t.fail('an address destination is never isolated');
        const lines = explain(cluster, { src, dst, protocol, port });
        if ((lines[lines.length - 1] === 'verdict: allowed') !== v.allowed) t.fail('explain agrees with evaluate');
        checked++;
        if (v.allowed) allowed++;
      }
    }
  }
  t.equal(checked, ends.length * ends.length * specs.length);
  t.ok(allowed > 0 && allowed < checked, `${allowed} of ${checked} allowed`);
});
