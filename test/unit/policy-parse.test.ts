import t from 'tap';
import { formatPath, formatProblem, parsePolicies, PolicyParseError, validatePolicies, type PolicyProblem } from '../../src/policy/parse.js';
import type { NetworkPolicy } from '../../src/policy/types.js';
import { HEAD, TEST_NETWORK_POLICY } from './policy-fixtures.js';


/** The problems of an input, as "path: message" (or the full formatted lines with `full`). */
function problems(text: string, full = false): string[] {
  try {
    parsePolicies(text, 'in.yaml');
  } catch (e) {
    if (!(e instanceof PolicyParseError)) throw e;
    return e.errors.map((p) => (full ? formatProblem(p) : `${p.path}: ${p.message}`));
  }
  return [];
}

/** One policy as a JSON document (JSON is YAML): default/p with the given spec. */
function withSpec(spec: unknown, metadata: unknown = { name: 'p' }): string {
  return JSON.stringify({ apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata, spec });
}

function one(text: string): NetworkPolicy {
  const ps = parsePolicies(text, 'in.yaml');
  if (ps.length !== 1) throw new Error(`expected one policy, got ${ps.length}`);
  return ps[0]!;
}

t.test('the Kubernetes documentation example parses into the normalised model', async (t) => {
  const text = TEST_NETWORK_POLICY;
  t.same(parsePolicies(text, 'doc.yaml'), [
    {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { name: 'test-network-policy', namespace: 'default' },
      spec: {
        podSelector: { matchLabels: { role: 'db' } },
        policyTypes: ['Ingress', 'Egress'],
        ingress: [
          {
            from: [
              { ipBlock: { cidr: '172.17.0.0/16', except: ['172.17.1.0/24'] } },
              { namespaceSelector: { matchLabels: { project: 'myproject' } } },
              { podSelector: { matchLabels: { role: 'frontend' } } },
            ],
            ports: [{ protocol: 'TCP', port: 6379 }],
          },
        ],
        egress: [{ to: [{ ipBlock: { cidr: '10.0.0.0/24' } }], ports: [{ protocol: 'TCP', port: 5978 }] }],
      },
    },
  ]);
});

t.test('defaults: namespace, protocol, empty rule lists', async (t) => {
  const p = one(withSpec({ podSelector: {}, ingress: [{ ports: [{ port: 80 }, { protocol: 'UDP' }, { port: 'dns', protocol: 'UDP' }] }] }));
  t.equal(p.metadata.namespace, 'default');
  t.same(p.spec.podSelector, {}, 'podSelector: {} is valid and kept empty');
  t.same(p.spec.ingress[0]!.ports, [{ protocol: 'TCP', port: 80 }, { protocol: 'UDP' }, { protocol: 'UDP', port: 'dns' }]);
  t.same(p.spec.egress, [], 'absent egress is an empty list');
  const nulls = one(withSpec({ podSelector: {}, ingress: null, egress: null, policyTypes: null }, { name: 'p', namespace: null, labels: null }));
  t.same(nulls.spec, { podSelector: {}, policyTypes: ['Ingress'], ingress: [], egress: [] }, 'null is absent');
  t.same(nulls.metadata, { name: 'p', namespace: 'default' });
});

t.test('policyTypes is inferred exactly as the API defaults it', async (t) => {
  const types = (spec: Record<string, unknown>): unknown => one(withSpec({ podSelector: {}, ...spec })).spec.policyTypes;
  t.same(types({}), ['Ingress'], 'no rules: Ingress');
  t.same(types({ ingress: [{}] }), ['Ingress'], 'ingress rules only: Ingress');
  t.same(types({ egress: [{}] }), ['Ingress', 'Egress'], 'an egress rule: Ingress and Egress (Ingress is always there)');
  t.same(types({ egress: [] }), ['Ingress'], 'an empty egress list is no egress section (the API looks at its length)');
  t.same(types({ policyTypes: [], egress: [{}] }), ['Ingress', 'Egress'], 'an empty policyTypes is defaulted too');
  t.same(types({ policyTypes: ['Egress'] }), ['Egress'], 'explicit types are kept');
  t.same(types({ policyTypes: ['Egress'], ingress: [{}] }), ['Egress'], 'explicit types win over the rules present');
  t.same(types({ policyTypes: ['Egress', 'Ingress'] }), ['Ingress', 'Egress'], 'canonical order');
});

t.test('presence is preserved where the API distinguishes it', async (t) => {
  const p = one(
    withSpec({
      podSelector: { matchLabels: { app: 'web' } },
      ingress: [{}, { from: [] }, { from: [{ podSelector: {} }] }, { from: [{ namespaceSelector: {} }] }, { from: [{ namespaceSelector: {}, podSelector: {} }] }, { ports: [] }],
    }),
  );
  t.same(p.spec.ingress, [
    {},
    { from: [] },
    { from: [{ podSelector: {} }] },
    { from: [{ namespaceSelector: {} }] },
    { from: [{ podSelector: {}, namespaceSelector: {} }] },
    { ports: [] },
  ]);
  const sel = one(withSpec({ podSelector: { matchExpressions: [{ key: 'a', operator: 'Exists', values: [] }, { key: 'b', operator: 'In', values: ['x'] }] } }));
  t.same(sel.spec.podSelector, { matchExpressions: [{ key: 'a', operator: 'Exists' }, { key: 'b', operator: 'In', values: ['x'] }] }, 'Exists with values: [] is Exists');
});

t.test('several YAML documents, empty ones skipped, in input order', async (t) => {
  const text = `---\n${HEAD}metadata: {name: a, namespace: x}\nspec: {podSelector: {}}\n---\n---\n# only a comment\n---\n${HEAD}metadata: {name: b}\nspec: {podSelector: {}}\n...\n`;
  t.same(
    parsePolicies(text, 's').map((p) => `${p.metadata.namespace}/${p.metadata.name}`),
    ['x/a', 'default/b'],
  );
  t.same(parsePolicies('', 's'), [], 'empty input: no policies');
  t.same(parsePolicies('---\n', 's'), []);
});

t.test('kind List (kubectl get -o yaml) and NetworkPolicyList', async (t) => {
  const list = `apiVersion: v1
kind: List
metadata:
  resourceVersion: ""
items:
- ${HEAD.trimEnd().replace('\n', '\n  ')}
  metadata:
    name: a
    namespace: shop
    uid: 0b7c3c1e-0000-0000-0000-000000000000
    resourceVersion: "1234"
    generation: 1
    creationTimestamp: "2024-01-01T00:00:00Z"
    annotations:
      kubectl.kubernetes.io/last-applied-configuration: '{}'
    labels:
      team: blue
  spec:
    podSelector: {}
    policyTypes: [Ingress]
`;
  const ps = parsePolicies(list, 'list.yaml');
  t.same(ps.map((p) => p.metadata), [{ name: 'a', namespace: 'shop', labels: { team: 'blue' }, annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{}' } }]);
  const apiList = JSON.stringify({
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicyList',
    metadata: { resourceVersion: '99' },
    items: [{ metadata: { name: 'a' }, spec: { podSelector: {} } }, { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: 'b' }, spec: { podSelector: {} } }],
  });
  t.same(parsePolicies(apiList, 'list.json').map((p) => p.metadata.name), ['a', 'b'], 'NetworkPolicyList items may leave out apiVersion and kind');
  t.same(parsePolicies('{"apiVersion": "v1", "kind": "List", "items": []}', 'empty.json'), [], 'an empty list');
});

t.test('JSON input, pretty-printed with tabs', async (t) => {
  const json = JSON.stringify({ apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: 'j', namespace: 'n' }, spec: { podSelector: { matchLabels: { a: 'b' } }, egress: [{ to: [{ ipBlock: { cidr: '0.0.0.0/0' } }] }] } }, null, '\t');
  const p = one(json);
  t.same(p.spec.policyTypes, ['Ingress', 'Egress']);
  t.same(p.spec.egress, [{ to: [{ ipBlock: { cidr: '0.0.0.0/0' } }] }]);
  t.same(problems(json.replace('"n"', '"N"'), true), [
    `in.yaml:6: document 1 (N/j): metadata.namespace: 'N' is not a valid DNS-1123 label: at most 63 lower-case letters, digits and '-', starting and ending with a letter or digit`,
  ], 'JSON errors have lines too');
});

t.test('every problem is collected, with source, line, document, policy and path', async (t) => {
  const text = `${HEAD}metadata:
  name: ok
spec:
  podSelector: {}
---
${HEAD}metadata:
  name: web
  namespace: shop
spec:
  podSelector:
    matchLabels:
      app: web
  ingress:
  - from:
    - ipBlock:
        cidr: 10.0.0.0/8
        except:
        - 11.0.0.0/16
    ports:
    - port: 0
  egres: []
`;
  let err: unknown;
  try {
    parsePolicies(text, 'policies.yaml');
  } catch (e) {
    err = e;
  }
  t.ok(err instanceof PolicyParseError);
  const e = err as PolicyParseError;
  t.same(e.errors.map(formatProblem), [
    'policies.yaml:25: document 2 (shop/web): spec.egres: unknown field (expected podSelector, policyTypes, ingress, egress)',
    "policies.yaml:22: document 2 (shop/web): spec.ingress[0].from[0].ipBlock.except[0]: '11.0.0.0/16' is not strictly inside cidr 10.0.0.0/8",
    'policies.yaml:24: document 2 (shop/web): spec.ingress[0].ports[0].port: must be a port number from 1 to 65535, got the number 0',
  ]);
  t.same(e.errors[0], {
    source: 'policies.yaml',
    document: 2,
    line: 25,
    policy: 'shop/web',
    path: 'spec.egres',
    message: 'unknown field (expected podSelector, policyTypes, ingress, egress)',
  } satisfies PolicyProblem, 'structured problems (unknown fields are reported first, when the mapping is read)');
  t.equal(
    e.message,
    `policies.yaml: 3 problems in NetworkPolicy input:\n  ${e.errors.map(formatProblem).join('\n  ')}`,
  );
});

t.test('validation errors, each with its exact message', async (t) => {
  const S = (spec: Record<string, unknown>): string => withSpec({ podSelector: {}, ...spec });
  const rule = (r: Record<string, unknown>): string => S({ ingress: [r] });
  const peer = (p: unknown): string => rule({ from: [p] });
  const port = (p: unknown): string => rule({ ports: [p] });
  const expr = (e: unknown): string => S({ podSelector: { matchExpressions: [e] } });
  const DNS_SUB = "is not a valid DNS-1123 subdomain: at most 253 lower-case letters, digits, '-' and '.', each '.'-separated part starting and ending with a letter or digit";
  const DNS_LABEL = "is not a valid DNS-1123 label: at most 63 lower-case letters, digits and '-', starting and ending with a letter or digit";
  const PORT_NAME = "is not a valid port name: 1-15 lower-case letters, digits and '-', with at least one letter, no leading, trailing or double '-'";
  const KEY_NAME = "the name must be 1-63 characters of letters, digits, '-', '_' or '.', starting and ending with a letter or digit";
  const cases: [string, string, string[]][] = [
    // documents
    ['not a mapping', '[1, 2]', [': must be a NetworkPolicy, List or NetworkPolicyList mapping, got a list']],
    ['a scalar document', 'hello', [': must be a NetworkPolicy, List or NetworkPolicyList mapping, got the string "hello"']],
    ['another kind', 'apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec: {containers: []}', ['kind: must be NetworkPolicy, List or NetworkPolicyList, got the string "Pod"']],
    ['kind missing', 'apiVersion: networking.k8s.io/v1\nmetadata: {name: p}\nspec: {podSelector: {}}', ['kind: is required (NetworkPolicy, List or NetworkPolicyList)']],
    ['apiVersion missing', 'kind: NetworkPolicy\nmetadata: {name: p}\nspec: {podSelector: {}}', ['apiVersion: is required (networking.k8s.io/v1)']],
    ['old apiVersion', 'apiVersion: extensions/v1beta1\nkind: NetworkPolicy\nmetadata: {name: p}\nspec: {podSelector: {}}', ['apiVersion: must be networking.k8s.io/v1, got the string "extensions/v1beta1"']],
    ['unknown top-level field', `${HEAD}metadata: {name: p}\nspec: {podSelector: {}}\nstatus: {}`, ['status: unknown field (expected apiVersion, kind, metadata, spec)']],
    ['metadata missing', `${HEAD}spec: {podSelector: {}}`, ['metadata: is required (with at least a name)']],
    ['spec missing', `${HEAD}metadata: {name: p}`, ['spec: is required (with at least podSelector)']],
    ['spec not a mapping', `${HEAD}metadata: {name: p}\nspec: []`, ['spec: must be a mapping, got a list']],
    // metadata
    ['name missing', withSpec({ podSelector: {} }, { namespace: 'a' }), ['metadata.name: is required']],
    ['generateName', withSpec({ podSelector: {} }, { generateName: 'p-' }), ['metadata.name: is required (generateName is not supported)']],
    ['name not a string', withSpec({ podSelector: {} }, { name: 12 }), ['metadata.name: must be a string, got the number 12']],
    ['name not DNS-1123', withSpec({ podSelector: {} }, { name: 'Allow_Web' }), [`metadata.name: 'Allow_Web' ${DNS_SUB}`]],
    ['name too long', withSpec({ podSelector: {} }, { name: 'a'.repeat(254) }), [`metadata.name: '${'a'.repeat(254)}' ${DNS_SUB}`]],
    ['namespace not a label', withSpec({ podSelector: {} }, { name: 'p', namespace: 'a.b' }), [`metadata.namespace: 'a.b' ${DNS_LABEL}`]],
    ['namespace too long', withSpec({ podSelector: {} }, { name: 'p', namespace: 'n'.repeat(64) }), [`metadata.namespace: '${'n'.repeat(64)}' ${DNS_LABEL}`]],
    ['unknown metadata field', withSpec({ podSelector: {} }, { name: 'p', nmespace: 'x' }), ['metadata.nmespace: unknown field (expected name, namespace, labels, annotations)']],
    ['bad label key', withSpec({ podSelector: {} }, { name: 'p', labels: { '-x': 'y' } }), [`metadata.labels: label key '-x': ${KEY_NAME}`]],
    ['bad label value', withSpec({ podSelector: {} }, { name: 'p', labels: { x: 'a b' } }), ["metadata.labels: label 'x': value 'a b' must be at most 63 characters of letters, digits, '-', '_' or '.', starting and ending with a letter or digit"]],
    ['label value not a string', withSpec({ podSelector: {} }, { name: 'p', labels: { v: 1 } }), ["metadata.labels: label 'v': the value must be a string, got the number 1 (quote it)"]],
    ['labels not a mapping', withSpec({ podSelector: {} }, { name: 'p', labels: ['a=b'] }), ['metadata.labels: must be a mapping of labels, got a list']],
    ['bad annotation key', withSpec({ podSelector: {} }, { name: 'p', annotations: { 'a b': 'x' } }), [`metadata.annotations: annotation key 'a b': ${KEY_NAME}`]],
    // spec
    ['podSelector missing', S({ podSelector: undefined }), ['spec.podSelector: is required (podSelector: {} selects every pod of the namespace)']],
    ['podSelector null', S({ podSelector: null }), ['spec.podSelector: is required (podSelector: {} selects every pod of the namespace)']],
    ['unknown spec field', S({ egres: [] }), ['spec.egres: unknown field (expected podSelector, policyTypes, ingress, egress)']],
    ['policyTypes not a list', S({ policyTypes: 'Ingress' }), ['spec.policyTypes: must be a list, got the string "Ingress"']],
    ['policyTypes bad value', S({ policyTypes: ['ingress'] }), ['spec.policyTypes[0]: must be Ingress or Egress, got the string "ingress"']],
    ['policyTypes duplicate', S({ policyTypes: ['Egress', 'Ingress', 'Egress'] }), ['spec.policyTypes[2]: duplicate Egress']],
    ['ingress not a list', S({ ingress: {} }), ['spec.ingress: must be a list, got a mapping']],
    ['rule not a mapping', S({ egress: ['x'] }), ['spec.egress[0]: must be a mapping, got the string "x"']],
    ['unknown rule field (to in ingress)', rule({ to: [] }), ['spec.ingress[0].to: unknown field (expected from, ports)']],
    ['unknown rule field (from in egress)', S({ egress: [{ from: [] }] }), ['spec.egress[0].from: unknown field (expected to, ports)']],
    // selectors
    ['selector unknown field', S({ podSelector: { app: 'web' } }), ['spec.podSelector.app: unknown field (expected matchLabels, matchExpressions)']],
    ['matchLabels bad key', S({ podSelector: { matchLabels: { 'Example.com/a': 'b' } } }), ["spec.podSelector.matchLabels: label key 'Example.com/a': the prefix must be a DNS subdomain (lower-case, at most 253 characters)"]],
    ['matchLabels value not a string', S({ podSelector: { matchLabels: { on: true } } }), ["spec.podSelector.matchLabels: label 'on': the value must be a string, got the boolean true (quote it)"]],
    ['matchExpressions not a list', S({ podSelector: { matchExpressions: {} } }), ['spec.podSelector.matchExpressions: must be a list, got a mapping']],
    ['In without values', expr({ key: 'a', operator: 'In' }), ['spec.podSelector.matchExpressions[0].values: must be non-empty for operator In']],
    ['NotIn with empty values', expr({ key: 'a', operator: 'NotIn', values: [] }), ['spec.podSelector.matchExpressions[0].values: must be non-empty for operator NotIn']],
    ['Exists with values', expr({ key: 'a', operator: 'Exists', values: ['x'] }), ['spec.podSelector.matchExpressions[0].values: must be empty for operator Exists']],
    ['DoesNotExist with values', expr({ key: 'a', operator: 'DoesNotExist', values: ['x'] }), ['spec.podSelector.matchExpressions[0].values: must be empty for operator DoesNotExist']],
    ['operator lower case', expr({ key: 'a', operator: 'in', values: ['x'] }), ['spec.podSelector.matchExpressions[0].operator: must be one of In, NotIn, Exists, DoesNotExist, got the string "in"']],
    ['operator missing', expr({ key: 'a' }), ['spec.podSelector.matchExpressions[0].operator: is required (In, NotIn, Exists, DoesNotExist)']],
    ['key missing', expr({ operator: 'Exists' }), ['spec.podSelector.matchExpressions[0].key: is required']],
    ['bad key', expr({ key: 'a/b/c', operator: 'Exists' }), [`spec.podSelector.matchExpressions[0].key: label key 'a/b/c': ${KEY_NAME}`]],
    ['bad value', expr({ key: 'a', operator: 'In', values: ['ok', '-no'] }), ["spec.podSelector.matchExpressions[0].values[1]: label 'a': value '-no' must be at most 63 characters of letters, digits, '-', '_' or '.', starting and ending with a letter or digit"]],
    ['value not a string', expr({ key: 'a', operator: 'In', values: [1] }), ['spec.podSelector.matchExpressions[0].values[0]: must be a string, got the number 1']],
    ['expression unknown field', expr({ key: 'a', operator: 'Exists', value: 'x' }), ['spec.podSelector.matchExpressions[0].value: unknown field (expected key, operator, values)']],
    // peers
    ['empty peer', peer({}), ['spec.ingress[0].from[0]: must set podSelector, namespaceSelector or ipBlock']],
    ['peer with only nulls', peer({ podSelector: null }), ['spec.ingress[0].from[0]: must set podSelector, namespaceSelector or ipBlock']],
    ['ipBlock with podSelector', peer({ ipBlock: { cidr: '10.0.0.0/8' }, podSelector: {} }), ['spec.ingress[0].from[0]: ipBlock may not be combined with podSelector in one peer']],
    ['ipBlock with namespaceSelector', peer({ ipBlock: { cidr: '10.0.0.0/8' }, namespaceSelector: {} }), ['spec.ingress[0].from[0]: ipBlock may not be combined with namespaceSelector in one peer']],
    ['ipBlock with both selectors', S({ egress: [{ to: [{ ipBlock: { cidr: '10.0.0.0/8' }, namespaceSelector: {}, podSelector: {} }] }] }), ['spec.egress[0].to[0]: ipBlock may not be combined with podSelector and namespaceSelector in one peer']],
    ['peer unknown field', peer({ serviceAccount: 'x' }), ['spec.ingress[0].from[0].serviceAccount: unknown field (expected podSelector, namespaceSelector, ipBlock)', 'spec.ingress[0].from[0]: must set podSelector, namespaceSelector or ipBlock']],
    ['bad namespaceSelector', peer({ namespaceSelector: { matchLabels: { a: 'b c' } } }), ["spec.ingress[0].from[0].namespaceSelector.matchLabels: label 'a': value 'b c' must be at most 63 characters of letters, digits, '-', '_' or '.', starting and ending with a letter or digit"]],
    // ipBlock
    ['cidr missing', peer({ ipBlock: { except: [] } }), ['spec.ingress[0].from[0].ipBlock.cidr: is required']],
    ['cidr not a string', peer({ ipBlock: { cidr: 10 } }), ['spec.ingress[0].from[0].ipBlock.cidr: must be a string, got the number 10']],
    ['cidr without prefix', peer({ ipBlock: { cidr: '10.0.0.1' } }), ["spec.ingress[0].from[0].ipBlock.cidr: '10.0.0.1' is not a CIDR like 10.244.0.0/16"]],
    ['cidr prefix too long', peer({ ipBlock: { cidr: '10.0.0.0/33' } }), ["spec.ingress[0].from[0].ipBlock.cidr: '10.0.0.0/33': prefix length 33 is above 32"]],
    ['cidr bad address', peer({ ipBlock: { cidr: '300.0.0.0/8' } }), ["spec.ingress[0].from[0].ipBlock.cidr: '300.0.0.0/8' is not an IPv4 CIDR: '300.0.0.0' is not an IPv4 address"]],
    ['cidr with spaces', peer({ ipBlock: { cidr: ' 10.0.0.0/8' } }), ["spec.ingress[0].from[0].ipBlock.cidr: ' 10.0.0.0/8' is not an IPv4 CIDR: it has surrounding spaces"]],
    ['IPv6 cidr', peer({ ipBlock: { cidr: 'fd00::/8' } }), ["spec.ingress[0].from[0].ipBlock.cidr: 'fd00::/8' is an IPv6 CIDR: sluice's dataplane is IPv4-only"]],
    ['IPv6 except', peer({ ipBlock: { cidr: '10.0.0.0/8', except: ['fd00::/16'] } }), ["spec.ingress[0].from[0].ipBlock.except[0]: 'fd00::/16' is an IPv6 CIDR: sluice's dataplane is IPv4-only"]],
    ['except outside cidr', peer({ ipBlock: { cidr: '172.17.0.0/16', except: ['172.17.1.0/24', '172.18.1.0/24'] } }), ["spec.ingress[0].from[0].ipBlock.except[1]: '172.18.1.0/24' is not strictly inside cidr 172.17.0.0/16"]],
    ['except equal to cidr', peer({ ipBlock: { cidr: '172.17.0.0/16', except: ['172.17.0.0/16'] } }), ["spec.ingress[0].from[0].ipBlock.except[0]: '172.17.0.0/16' is not strictly inside cidr 172.17.0.0/16"]],
    ['except with host bits equal to cidr', peer({ ipBlock: { cidr: '172.17.0.0/16', except: ['172.17.3.4/16'] } }), ["spec.ingress[0].from[0].ipBlock.except[0]: '172.17.3.4/16' is not strictly inside cidr 172.17.0.0/16"]],
    ['except larger than cidr', peer({ ipBlock: { cidr: '172.17.0.0/16', except: ['172.0.0.0/8'] } }), ["spec.ingress[0].from[0].ipBlock.except[0]: '172.0.0.0/8' is not strictly inside cidr 172.17.0.0/16"]],
    ['except not a list', peer({ ipBlock: { cidr: '10.0.0.0/8', except: '10.1.0.0/16' } }), ['spec.ingress[0].from[0].ipBlock.except: must be a list, got the string "10.1.0.0/16"']],
    ['ipBlock unknown field', peer({ ipBlock: { cidr: '10.0.0.0/8', excpet: [] } }), ['spec.ingress[0].from[0].ipBlock.excpet: unknown field (expected cidr, except)']],
    // ports
    ['protocol lower case', port({ protocol: 'tcp', port: 80 }), ['spec.ingress[0].ports[0].protocol: must be TCP, UDP or SCTP, got the string "tcp"']],
    ['protocol ICMP', port({ protocol: 'ICMP' }), ['spec.ingress[0].ports[0].protocol: must be TCP, UDP or SCTP, got the string "ICMP"']],
    ['port 0', port({ port: 0 }), ['spec.ingress[0].ports[0].port: must be a port number from 1 to 65535, got the number 0']],
    ['port 65536', port({ port: 65536 }), ['spec.ingress[0].ports[0].port: must be a port number from 1 to 65535, got the number 65536']],
    ['port not an integer', port({ port: 80.5 }), ['spec.ingress[0].ports[0].port: must be a port number from 1 to 65535, got the number 80.5']],
    ['port number as a string', port({ port: '80' }), ["spec.ingress[0].ports[0].port: '80' is a string, not a port number: write the number without quotes (a port name needs a letter)"]],
    ['port name upper case', port({ port: 'HTTP' }), [`spec.ingress[0].ports[0].port: 'HTTP' ${PORT_NAME}`]],
    ['port name too long', port({ port: 'a234567890123456' }), [`spec.ingress[0].ports[0].port: 'a234567890123456' ${PORT_NAME}`]],
    ['port name with --', port({ port: 'my--port' }), [`spec.ingress[0].ports[0].port: 'my--port' ${PORT_NAME}`]],
    ['port name with leading -', port({ port: '-http' }), [`spec.ingress[0].ports[0].port: '-http' ${PORT_NAME}`]],
    ['port name empty', port({ port: '' }), [`spec.ingress[0].ports[0].port: '' ${PORT_NAME}`]],
    ['port boolean', port({ port: true }), ['spec.ingress[0].ports[0].port: must be a port number or a port name, got the boolean true']],
    ['endPort without port', port({ endPort: 90 }), ['spec.ingress[0].ports[0].endPort: may not be specified without port']],
    ['endPort with a named port', port({ port: 'http', endPort: 90 }), ["spec.ingress[0].ports[0].endPort: may not be specified with a named port ('http')"]],
    ['endPort below port', port({ port: 32768, endPort: 32000 }), ['spec.ingress[0].ports[0].endPort: must be greater than or equal to port (32768), got 32000']],
    ['endPort out of range', port({ port: 80, endPort: 70000 }), ['spec.ingress[0].ports[0].endPort: must be a port number from 1 to 65535, got the number 70000']],
    ['ports unknown field', port({ port: 80, targetPort: 8080 }), ['spec.ingress[0].ports[0].targetPort: unknown field (expected protocol, port, endPort)']],
    ['ports not a list', rule({ ports: 80 }), ['spec.ingress[0].ports: must be a list, got the number 80']],
    // lists
    ['List with a wrong apiVersion', '{"apiVersion": "networking.k8s.io/v1", "kind": "List", "items": []}', ['apiVersion: must be v1 for kind List, got the string "networking.k8s.io/v1"']],
    ['NetworkPolicyList with a wrong apiVersion', '{"apiVersion": "v1", "kind": "NetworkPolicyList", "items": []}', ['apiVersion: must be networking.k8s.io/v1 for kind NetworkPolicyList, got the string "v1"']],
    ['List without items', '{"apiVersion": "v1", "kind": "List"}', ['items: is required (a list of NetworkPolicy objects)']],
    ['List items not a list', '{"apiVersion": "v1", "kind": "List", "items": {}}', ['items: must be a list, got a mapping']],
    ['List unknown field', '{"apiVersion": "v1", "kind": "List", "items": [], "extra": 1}', ['extra: unknown field (expected apiVersion, kind, metadata, items)']],
    ['List item of another kind', '{"apiVersion": "v1", "kind": "List", "items": [{"apiVersion": "v1", "kind": "Service"}]}', ['items[0].kind: must be NetworkPolicy, got the string "Service"']],
    ['List item without kind', '{"apiVersion": "v1", "kind": "List", "items": [{"apiVersion": "networking.k8s.io/v1", "metadata": {"name": "a"}, "spec": {"podSelector": {}}}]}', ['items[0].kind: is required (NetworkPolicy)']],
    ['List item not a mapping', '{"apiVersion": "v1", "kind": "List", "items": [null]}', ['items[0]: must be a NetworkPolicy mapping, got null']],
    ['NetworkPolicyList item with a wrong apiVersion', '{"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicyList", "items": [{"apiVersion": "v1", "metadata": {"name": "a"}, "spec": {"podSelector": {}}}]}', ['items[0].apiVersion: must be networking.k8s.io/v1, got the string "v1"']],
    // duplicates
    ['duplicate policy across documents', `${withSpec({ podSelector: {} }, { name: 'a', namespace: 'default' })}\n---\n${withSpec({ podSelector: {} }, { name: 'a' })}`, ['metadata.name: duplicate NetworkPolicy default/a (also in document 1)']],
    ['duplicate policy inside a list', '{"apiVersion": "v1", "kind": "List", "items": [{"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "a"}, "spec": {"podSelector": {}}}, {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "a"}, "spec": {}}]}', [
      'items[1].spec.podSelector: is required (podSelector: {} selects every pod of the namespace)',
      'items[1].metadata.name: duplicate NetworkPolicy default/a (also in document 1 items[0])',
    ]],
    // YAML itself
    ['YAML syntax error', `${HEAD}metadata: {name: p\nspec: {}`, [': not valid YAML: Flow map in block collection must be sufficiently indented and end with a }']],
    ['duplicate YAML keys', `${HEAD}metadata: {name: p}\nspec: {podSelector: {}}\nspec: {podSelector: {}}`, [': not valid YAML: Map keys must be unique']],
  ];
  for (const [name, text, want] of cases) t.same(problems(text), want, name);
  t.ok(cases.length >= 90, `${cases.length} error cases`);
});

t.test('problems of several documents and items are all reported at once', async (t) => {
  const text = `${HEAD}metadata: {name: a}\nspec: {podSelector: {}, ingress: [{ports: [{port: 0}]}]}
---
not: [valid
---
${HEAD}metadata: {name: B}\nspec: {podSelector: {}}
---
apiVersion: v1
kind: List
items:
- ${HEAD.trimEnd().replace('\n', '\n  ')}
  metadata: {name: c, namespace: x}
  spec: {podSelector: {}, policyTypes: [Egres]}
`;
  t.same(problems(text, true), [
    'in.yaml:4: document 1 (default/a): spec.ingress[0].ports[0].port: must be a port number from 1 to 65535, got the number 0',
    'in.yaml:7: document 2: not valid YAML: Flow sequence in block collection must be sufficiently indented and end with a ]',
    `in.yaml:10: document 3 (default/B): metadata.name: 'B' is not a valid DNS-1123 subdomain: at most 253 lower-case letters, digits, '-' and '.', each '.'-separated part starting and ending with a letter or digit`,
    'in.yaml:19: document 4 (x/c): items[0].spec.policyTypes[0]: must be Ingress or Egress, got the string "Egres"',
  ]);
});

t.test('formatPath', async (t) => {
  t.equal(formatPath([]), '');
  t.equal(formatPath(['spec', 'ingress', 0, 'from', 1, 'ipBlock', 'except', 0]), 'spec.ingress[0].from[1].ipBlock.except[0]');
  t.equal(formatPath(['items', 3, 'metadata']), 'items[3].metadata');
});

t.test('normalisation is idempotent; validatePolicies checks decoded objects the same way', async (t) => {
  const text = `${HEAD}metadata: {name: a, namespace: x}
spec:
  podSelector: {matchExpressions: [{key: k, operator: Exists, values: []}]}
  ingress:
  - from: [{podSelector: {}, namespaceSelector: {matchLabels: {a: b}}}, {ipBlock: {cidr: 10.0.0.0/8, except: [10.1.0.0/16]}}]
    ports: [{port: 80}, {port: http, protocol: UDP}, {port: 1000, endPort: 2000}]
  egress:
  - to: []
`;
  const once = parsePolicies(text, 'a');
  t.same(parsePolicies(JSON.stringify(once[0]), 'b'), once, 'parse(format(parse(x))) = parse(x)');
  t.same(validatePolicies(once, 'c'), once, 'normalised policies validate unchanged');
  t.same(
    validatePolicies([{ apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: 'w' }, spec: { podSelector: {}, egress: [{ ports: [{ port: 53 }] }] } }], 'objects'),
    [{ apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: 'w', namespace: 'default' }, spec: { podSelector: {}, policyTypes: ['Ingress', 'Egress'], ingress: [], egress: [{ ports: [{ protocol: 'TCP', port: 53 }] }] } }],
    'wire-form objects get their defaults',
  );
  t.throws(() => validatePolicies([null, { kind: 'NetworkPolicy' }], 'objects'), {
    message: [
      'objects: 4 problems in NetworkPolicy input:',
      '  objects: document 1: must be a NetworkPolicy, List or NetworkPolicyList mapping, got null',
      '  objects: document 2: apiVersion: is required (networking.k8s.io/v1)',
      '  objects: document 2: metadata: is required (with at least a name)',
      '  objects: document 2: spec: is required (with at least podSelector)',
    ].join('\n'),
  });
});

t.test('a CIDR with host bits is taken as its network, as the API server takes it, with a warning naming the canonical form', async (t) => {
  const text = `${HEAD}
metadata: { name: exported, namespace: web }
spec:
  podSelector: {}
  ingress:
    - from:
        - ipBlock:
            cidr: 10.244.1.5/4
            except: [10.244.1.5/24, 10.0.0.0/8]
  egress:
    - to:
        - ipBlock: { cidr: 172.17.0.1/16 }
`;
  const warnings: PolicyProblem[] = [];
  const [p] = parsePolicies(text, 'exported.yaml', warnings);
  t.same(p!.spec.ingress[0]!.from![0]!.ipBlock, { cidr: '0.0.0.0/4', except: ['10.244.1.0/24', '10.0.0.0/8'] }, 'the policy keeps the networks');
  t.same(p!.spec.egress[0]!.to![0]!.ipBlock, { cidr: '172.17.0.0/16' });
  t.same(warnings.map(formatProblem), [
    "exported.yaml:10: document 1 (web/exported): spec.ingress[0].from[0].ipBlock.cidr: '10.244.1.5/4' has host bits set: it is taken as 0.0.0.0/4 (write 0.0.0.0/4 to say so)",
    "exported.yaml:11: document 1 (web/exported): spec.ingress[0].from[0].ipBlock.except[0]: '10.244.1.5/24' has host bits set: it is taken as 10.244.1.0/24 (write 10.244.1.0/24 to say so)",
    "exported.yaml:14: document 1 (web/exported): spec.egress[0].to[0].ipBlock.cidr: '172.17.0.1/16' has host bits set: it is taken as 172.17.0.0/16 (write 172.17.0.0/16 to say so)",
  ], 'one warning per CIDR with host bits, with file, line and path; none for the canonical one');
  t.same(parsePolicies(text, 'exported.yaml'), [p], 'without a warnings list the result is the same');
  const again: PolicyProblem[] = [];
  t.same(validatePolicies([p], 'store', again), [p], 'the canonical policy validates unchanged');
  t.same(again, [], 'and warns no more');
});
