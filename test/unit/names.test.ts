/** The one namer of listings and events: reserved names, CIDR identities, labels, and the numbers nobody knows. Pure. */
import t from 'tap';
import { allocatedIdentity, Names } from '../../src/inspect/names.js';
import { FIRST_CIDR_IDENTITY } from '../../src/identity/identity.js';

const names = new Names({
  identityLabels: (id) => (id === 300 ? { app: 'web', 'io.kubernetes.pod.namespace': 'shop' } : undefined),
  cidr: (id) => (id === FIRST_CIDR_IDENTITY ? '192.0.2.0/24' : undefined),
  policy: (id) => (id === 7 ? 'shop/web' : undefined),
  endpoint: (id) => (id === 2 ? 'shop/web' : undefined),
});

t.test('identities', async (tt) => {
  tt.equal(names.identity(0), 'any');
  tt.equal(names.labels(0), undefined, 'identity 0 has no labels');
  tt.equal(names.identity(2), 'reserved:world');
  tt.match(names.identity(300), /app=web/);
  tt.equal(names.identity(FIRST_CIDR_IDENTITY), 'cidr:192.0.2.0/24');
  tt.equal(names.identity(301), 'identity 301', 'unknown: its number');
  tt.equal(names.identity(FIRST_CIDR_IDENTITY + 1), `identity ${FIRST_CIDR_IDENTITY + 1}`, 'an unknown CIDR identity: its number');
  tt.equal(names.labels(301), undefined);
  tt.same([0, 1, 3, 256, FIRST_CIDR_IDENTITY].map(allocatedIdentity), [false, false, false, true, false], 'only pod identities are looked up in the store');
});

t.test('policies and endpoints', async (tt) => {
  tt.equal(names.policy(0), '-');
  tt.equal(names.policy(7), 'shop/web');
  tt.equal(names.policy(8), 'id 8', 'one spelling for an unknown policy, in listings and events');
  tt.equal(names.endpoint(2), 'shop/web');
  tt.equal(names.endpoint(4), 'endpoint 4');
});
