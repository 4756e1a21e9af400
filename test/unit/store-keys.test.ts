/**
 * The store's keyspace (src/store/keys.ts). Keys are a wire format: a file store on disk or a
 * shared etcd written by an earlier version must keep working, so these are the exact strings,
 * byte for byte. And the prefixes are spelled out nowhere in src/ but in keys.ts.
 */
import t from 'tap';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as keys from '../../src/store/keys.js';
import {
  ENDPOINTS, HEALTH, IDENTITY_IDS, IDENTITY_LABELS, IPAM_ADDRS, IPAM_BLOCKS, IPAM_HANDLES, NAMESPACES, NODES, POLICIES,
  PREFILTER_NEXT_ID_KEY, PREFILTER_PREFIX, addrKey, blockAddrsPrefix, blockKey, blockOfKey, endpointKey, handleKey,
  handleOfKey, healthKey, identityKey, identityLabelsKey, identityOfKey, ipOfAddrKey, namespaceKey, namespaceOfKey,
  namespacePoliciesPrefix, nodeEndpointsPrefix, nodeHandlesPrefix, nodeKey, nodeOfHealthKey, policyStoreKey,
  prefilterCidrText, prefilterKey, SERVICES, ENDPOINT_SLICES, SERVICE_ALLOCATION_KEY, serviceStoreKey, namespaceServicesPrefix,
  endpointSliceStoreKey, namespaceEndpointSlicesPrefix, objectOfKey,
} from '../../src/store/keys.js';
import { REPO } from '../helpers/env.js';

t.test('prefixes', async (t) => {
  t.same(
    [NODES, HEALTH, ENDPOINTS, POLICIES, NAMESPACES, IDENTITY_IDS, IDENTITY_LABELS, IPAM_BLOCKS, IPAM_ADDRS, IPAM_HANDLES, PREFILTER_PREFIX, PREFILTER_NEXT_ID_KEY],
    ['nodes/', 'health/', 'endpoints/', 'policies/', 'namespaces/', 'identities/ids/', 'identities/labels/', 'ipam/blocks/', 'ipam/addrs/', 'ipam/handles/', 'prefilter/', 'prefilter-next-id'],
  );
  t.same([SERVICES, ENDPOINT_SLICES, SERVICE_ALLOCATION_KEY], ['services/', 'endpointslices/', 'services-allocation']);
  t.notOk(SERVICE_ALLOCATION_KEY.startsWith(SERVICES), 'listing the services never sees the allocation key');
});

t.test('keys built', async (t) => {
  const cases: [string, string][] = [
    [nodeKey('n1'), 'nodes/n1'],
    [healthKey('n1'), 'health/n1'],
    [nodeEndpointsPrefix('n1'), 'endpoints/n1/'],
    [endpointKey('n1', 7), 'endpoints/n1/7'],
    [namespacePoliciesPrefix('shop'), 'policies/shop/'],
    [policyStoreKey('shop/web'), 'policies/shop/web'],
    [namespaceKey('shop'), 'namespaces/shop'],
    [identityKey(256), 'identities/ids/256'],
    [identityLabelsKey('ab12'), 'identities/labels/ab12'],
    [blockKey('10.244.1.0/24'), 'ipam/blocks/10.244.1.0-24'],
    [blockAddrsPrefix('10.244.0.0/24'), 'ipam/addrs/10.244.0.0-24/'],
    [addrKey('10.244.0.0/24', '10.244.0.77'), 'ipam/addrs/10.244.0.0-24/10.244.0.77'],
    [handleKey('c3/eth0'), 'ipam/handles/c3%2Feth0'],
    [handleKey('n1/ctr-1/eth0'), 'ipam/handles/n1%2Fctr-1%2Feth0'],
    [nodeHandlesPrefix('n1'), 'ipam/handles/n1%2F'],
    [prefilterKey('198.18.77.0/24'), 'prefilter/198.18.77.0-24'],
    [prefilterKey('0.0.0.0/0'), 'prefilter/0.0.0.0-0'],
    [namespaceServicesPrefix('shop'), 'services/shop/'],
    [serviceStoreKey('shop/web'), 'services/shop/web'],
    [namespaceEndpointSlicesPrefix('shop'), 'endpointslices/shop/'],
    [endpointSliceStoreKey('shop/web-1'), 'endpointslices/shop/web-1'],
  ];
  for (const [got, want] of cases) t.equal(got, want);
  t.ok(handleKey('n1/ctr-1/eth0').startsWith(nodeHandlesPrefix('n1')), "a node's handles are under its prefix");
  t.notOk(handleKey('n10/ctr-1/eth0').startsWith(nodeHandlesPrefix('n1')), "another node's are not");
});

t.test('keys parsed', async (t) => {
  t.equal(nodeOfHealthKey('health/n1'), 'n1');
  t.equal(namespaceOfKey('namespaces/shop'), 'shop');
  t.equal(identityOfKey('identities/ids/256'), 256);
  t.equal(blockOfKey('ipam/blocks/10.244.1.0-24'), '10.244.1.0/24');
  t.equal(ipOfAddrKey('10.244.0.0/24', 'ipam/addrs/10.244.0.0-24/10.244.0.77'), '10.244.0.77');
  t.equal(handleOfKey('ipam/handles/c3%2Feth0'), 'c3/eth0');
  t.equal(prefilterCidrText('prefilter/198.18.77.0-24'), '198.18.77.0/24');
  t.equal(prefilterCidrText('prefilter/junk'), undefined);
  t.equal(prefilterCidrText('other/1.2.3.0-24'), undefined);
  t.equal(prefilterCidrText(PREFILTER_NEXT_ID_KEY), undefined, 'the id counter is not a rule');
  t.notOk(PREFILTER_NEXT_ID_KEY.startsWith(PREFILTER_PREFIX), 'listing the rules never sees the counter');
  t.same(objectOfKey(SERVICES, 'services/shop/web'), { namespace: 'shop', name: 'web' });
  t.same(objectOfKey(ENDPOINT_SLICES, 'endpointslices/shop/web-1'), { namespace: 'shop', name: 'web-1' });
  t.equal(objectOfKey(SERVICES, 'endpointslices/shop/web-1'), undefined, 'another prefix');
  t.equal(objectOfKey(SERVICES, 'services/shop'), undefined, 'no name');
  t.equal(objectOfKey(SERVICES, 'services/shop/web/x'), undefined, 'too many parts');
  t.equal(objectOfKey(SERVICES, SERVICE_ALLOCATION_KEY), undefined, 'the allocation key is no service');
});

/** Lines outside keys.ts that may spell a prefix (none today; a line here needs a reason). */
const ALLOWED = new Set<string>();

t.test('no file in src/ but store/keys.ts spells out a key prefix', async (t) => {
  // Every string the module exports is a prefix or a key; its first segment is what must not appear quoted elsewhere.
  const heads = [...new Set((Object.values(keys) as unknown[]).filter((v): v is string => typeof v === 'string').map((v) => v.split('/')[0]!.replace(/-.*$/, '')))];
  t.ok(heads.includes('nodes') && heads.includes('prefilter') && heads.includes('ipam'), `heads: ${heads.join(', ')}`);
  const literal = new RegExp(`['"\`](${heads.join('|')})[/-]`);
  const files = readdirSync(join(REPO, 'src'), { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts')).map((f) => `src/${f}`).sort();
  const offenders: string[] = [];
  for (const f of files) {
    if (f === 'src/store/keys.ts') continue;
    readFileSync(join(REPO, f), 'utf8').split('\n').forEach((line, i) => {
      if (literal.test(line) && !ALLOWED.has(`${f}:${line.trim()}`)) offenders.push(`${f}:${i + 1}: ${line.trim()}`);
    });
  }
  t.same(offenders, [], 'store key prefixes belong in src/store/keys.ts');
});
