/**
 * Records read back from the store are checked like user input (src/store/record.ts): a
 * forged or broken record is left out with its key and problem, never half-used.
 */
import t from 'tap';
import { endpointRecordProblems, publishedEndpoints } from '../../src/agent/policy-inputs.js';
import { parseNodeRecord } from '../../src/node/underlay.js';
import { parsePublishedEndpoint } from '../../src/policy/store.js';
import { endpointKey, endpointOfKey, nodeKey } from '../../src/store/keys.js';
import { parseRecords, RecordError } from '../../src/store/record.js';

const ep = { node: 'n1', id: 5, name: 'web/a', namespace: 'web', ip: '10.244.1.5', identity: 257, labels: { app: 'a' }, ports: [{ name: 'http', port: 80, protocol: 'TCP' }] };
const node = { name: 'n1', podCIDR: '10.244.1.0/24', underlayIP: '198.18.0.11', subnet: '198.18.0.0/24', mode: 'vxlan', updated: '2026-12-07T10:00:00.000Z' };
const put = (o: object, patch: Record<string, unknown>) => JSON.stringify({ ...o, ...patch });

t.test('endpoint keys', async (tt) => {
  tt.same(endpointOfKey(endpointKey('n1', 5)), { node: 'n1', id: 5 });
  for (const k of ['endpoints/n1/0', 'endpoints/n1/05', 'endpoints/n1/x', 'endpoints/n1', 'endpoints/a/b/1', 'nodes/n1']) tt.equal(endpointOfKey(k), undefined, k);
});

t.test('a published endpoint, field by field', async (tt) => {
  const key = endpointKey('n1', 5);
  tt.same(parsePublishedEndpoint(key, JSON.stringify(ep)), ep, 'a good record reads back as written');
  tt.same(parsePublishedEndpoint(key, put(ep, { ipv6: 'fd00:10:244:1::5' })), { ...ep, ipv6: 'fd00:10:244:1::5' }, 'with its IPv6 twin');
  const bad: [Record<string, unknown>, RegExp][] = [
    [{ node: 'n2' }, /store record endpoints\/n1\/5: "node" is 'n2', but the key is node n1's/],
    [{ id: 6 }, /"id" is 6, but the key names endpoint 5/],
    [{ ip: 'fd00::5' }, /"ip" must be an IPv4 address, got 'fd00::5'/],
    [{ ip: '10.244.1.300' }, /"ip" must be an IPv4 address/],
    [{ ipv6: '10.244.1.5' }, /"ipv6" must be an IPv6 address, got '10.244.1.5'/],
    [{ ipv6: 'fe80::1%eth0' }, /"ipv6" must be an IPv6 address: .*zone/],
    [{ ipv6: 'fd00::1::2' }, /"ipv6" must be an IPv6 address: .*'::'/],
    [{ ipv6: 'fd00:10:244:1:2:3:4:5:6' }, /"ipv6" must be an IPv6 address: .*groups/],
    [{ identity: 0 }, /"identity" must be a whole number from 1 to 16777215, got 0/],
    [{ identity: '257' }, /"identity" must be a whole number/],
    [{ name: 'Web/A' }, /"name" endpoint name 'Web\/A'/],
    [{ namespace: 'other' }, /"namespace" is 'other', but the name is in 'web'/],
    [{ labels: { 'bad key!': 'x' } }, /"labels" /],
    [{ labels: { app: 7 } }, /"labels" label 'app': value must be a string/],
    [{ ports: [{ port: 0 }] }, /"ports" ports\[0\]\.port must be an integer from 1 to 65535/],
  ];
  for (const [patch, want] of bad) tt.throws(() => parsePublishedEndpoint(key, put(ep, patch)), want, JSON.stringify(patch));
  tt.throws(() => parsePublishedEndpoint(key, '{"node":'), /is not JSON/);
  tt.throws(() => parsePublishedEndpoint(key, '[1]'), /is not a JSON object/);
  tt.throws(() => parsePublishedEndpoint('endpoints/n1/zz', JSON.stringify(ep)), /is not an endpoint key/);
});

t.test('a node record, field by field', async (tt) => {
  const key = nodeKey('n1');
  tt.same(parseNodeRecord(key, JSON.stringify(node)), node);
  tt.same(parseNodeRecord(key, put(node, { podCIDR: '', underlayIP: '', subnet: '' })), { ...node, podCIDR: '', underlayIP: '', subnet: '' }, 'a node without a block or underlay yet');
  tt.same(parseNodeRecord(key, put(node, { podCIDRv6: 'fd00:10:244:1::/64' })).podCIDRv6, 'fd00:10:244:1::/64');
  tt.equal(parseNodeRecord(key, put(node, { underlayMAC: '02:AB:00:00:00:0B' })).underlayMAC, '02:ab:00:00:00:0b', 'the uplink MAC, in lower case');
  const bad: [Record<string, unknown>, RegExp][] = [
    [{ name: 'n2' }, /store record nodes\/n1: "name" is 'n2', but the key is nodes\/n1/],
    [{ podCIDR: 'x' }, /"podCIDR" must be an IPv4 CIDR: 'x' is not a CIDR/],
    [{ podCIDR: '10.244.1.1/24' }, /"podCIDR" must be an IPv4 CIDR: .*host bits set/],
    [{ podCIDR: 'fd00::/64' }, /"podCIDR" must be an IPv4 CIDR/],
    [{ podCIDRv6: '10.244.1.0/24' }, /"podCIDRv6" must be an IPv6 CIDR like fd00:10:244::\/64, got '10.244.1.0\/24'/],
    [{ podCIDRv6: 'fd00::/129' }, /"podCIDRv6" must be an IPv6 CIDR.*above 128/],
    [{ podCIDRv6: 'fd00:10:244:1::5/64' }, /"podCIDRv6" must be an IPv6 CIDR.*host bits set: the network is fd00:10:244:1::\/64/],
    [{ podCIDRv6: 'fd00:zz::/64' }, /"podCIDRv6" must be an IPv6 CIDR/],
    [{ underlayIP: 'n1.example' }, /"underlayIP" must be an IPv4 address/],
    [{ mode: 3 }, /"mode" must be a string, got 3/],
    [{ underlayMAC: '02:00:00:00:00' }, /"underlayMAC" must be an Ethernet address like 02:00:00:00:00:01, got '02:00:00:00:00:00'|"underlayMAC" must be an Ethernet address like 02:00:00:00:00:01, got '02:00:00:00:00'/],
    [{ underlayMAC: 'ff:ff:ff:ff:ff:ff' }, /"underlayMAC" must be a unicast Ethernet address, got the multicast 'ff:ff:ff:ff:ff:ff'/],
    [{ underlayMAC: '00:00:00:00:00:00' }, /"underlayMAC" must not be all zeros/],
    [{ underlayMAC: 7 }, /"underlayMAC" must be a string, got 7/],
  ];
  for (const [patch, want] of bad) tt.throws(() => parseNodeRecord(key, put(node, patch)), want, JSON.stringify(patch));
});

t.test('readers leave a bad record out and say why', async (tt) => {
  const kvs = [
    { key: nodeKey('n1'), value: JSON.stringify(node) },
    { key: nodeKey('n9'), value: put(node, { name: 'n9', podCIDR: 'garbage' }) },
    { key: nodeKey('n2'), value: put(node, { name: 'n2', podCIDR: '10.244.2.0/24' }) },
  ];
  const r = parseRecords(kvs, parseNodeRecord);
  tt.same(r.records.map((n) => n.name), ['n1', 'n2'], 'the good records, in order');
  tt.match(r.problems, [/^store record nodes\/n9: "podCIDR" must be an IPv4 CIDR: 'garbage' is not a CIDR.*; left out$/]);
  tt.throws(() => parseRecords([{ key: 'k', value: '{}' }], () => { throw new TypeError('a bug'); }), TypeError, 'only record errors are swallowed');
  tt.ok(new RecordError('k', 'x') instanceof Error);

  // A node forging a pod of another node: the policy inputs leave it out.
  const endpoints = new Map([
    [endpointKey('n1', 5), JSON.stringify(ep)],
    [endpointKey('n2', 7), put(ep, { id: 7 })], // says node n1 under n2's key
  ]);
  tt.same(publishedEndpoints({ endpoints }).map((e) => `${e.node}/${e.id}`), ['n1/5']);
  tt.match(endpointRecordProblems({ endpoints }), [/endpoints\/n2\/7: "node" is 'n1', but the key is node n2's/]);
});
