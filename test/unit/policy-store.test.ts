import t from 'tap';
import { FileStore } from '../../src/store/file.js';
import { parsePolicies } from '../../src/policy/parse.js';
import { applyPolicies, deletePolicies, getPolicy, labelNamespace, listPolicies, namespaceLabels } from '../../src/policy/store.js';
import { parseLabelChanges } from '../../src/util/labels.js';
import { tempDir } from '../helpers/env.js';

const yaml = (name: string, ns = 'shop', port = 80) => `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: ${name}, namespace: ${ns}}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress: [{ports: [{port: ${port}}]}]
`;

t.test('apply is all or nothing, reports created/configured/unchanged; list, get, delete', async (t) => {
  const store = new FileStore(tempDir(t, 'sltpol'));
  t.teardown(() => store.close());
  const two = parsePolicies(`${yaml('a')}---\n${yaml('b')}`, 'x.yaml');
  t.same(await applyPolicies(store, two), { created: ['shop/a', 'shop/b'], configured: [], unchanged: [] });
  t.same(await applyPolicies(store, parsePolicies(`${yaml('a')}---\n${yaml('b', 'shop', 8080)}`, 'x.yaml')),
    { created: [], configured: ['shop/b'], unchanged: ['shop/a'] });
  t.same((await listPolicies(store)).map((p) => `${p.metadata.namespace}/${p.metadata.name}`), ['shop/a', 'shop/b']);
  t.equal((await getPolicy(store, 'shop/b'))?.spec.ingress[0]?.ports?.[0]?.port, 8080);
  t.equal(await getPolicy(store, 'shop/zz'), undefined);
  t.same(await deletePolicies(store, ['shop/a', 'shop/zz']), ['shop/a']);
  t.same((await listPolicies(store)).map((p) => p.metadata.name), ['b']);
});

t.test('namespace labels, kubectl style', async (t) => {
  const store = new FileStore(tempDir(t, 'sltns'));
  t.teardown(() => store.close());
  t.same(await labelNamespace(store, 'shop', { team: 'blue', env: 'prod' }, []), { team: 'blue', env: 'prod' });
  t.same(await labelNamespace(store, 'shop', { team: 'red' }, ['env']), { team: 'red' });
  t.same([...(await namespaceLabels(store))], [['shop', { team: 'red' }]]);
  t.same(parseLabelChanges(['a=1', 'b-', 'c=3,d=4']), { set: { a: '1', c: '3', d: '4' }, remove: ['b'] });
  t.throws(() => parseLabelChanges([]), /no label change given/);
  t.throws(() => parseLabelChanges(['a=1', 'a-']), /label a is both set and removed/);
  t.throws(() => parseLabelChanges(['Bad Key-']), /Bad Key/);
  t.throws(() => parseLabelChanges(['noequals']), /is not of the form key=value/);
});
