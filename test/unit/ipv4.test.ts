import t from 'tap';
import {
  blockCount, blockHosts, cidrContains, cidrOverlaps, cidrWithin, formatCidr, formatIPv4, isUsableHost, nthBlock, parseCidr, parseIPv4,
} from '../../src/util/ipv4.js';

t.test('IPv4 addresses parse and format', async (t) => {
  t.equal(parseIPv4('10.244.0.1'), 0x0af40001);
  t.equal(parseIPv4('255.255.255.255'), 0xffffffff);
  t.equal(formatIPv4(0xc0a80101), '192.168.1.1');
  for (const bad of ['10.0.0', '10.0.0.256', '1.2.3.4.5', 'a.b.c.d', '', '01.2.3.4', ' 1.2.3.4x']) {
    t.throws(() => parseIPv4(bad), { message: /is not an IPv4 address/ }, bad);
  }
});

t.test('CIDRs: strict host bits, containment, overlap', async (t) => {
  t.same(parseCidr('10.244.0.0/16'), { base: 0x0af40000, prefix: 16 });
  t.throws(() => parseCidr('10.244.1.0/16'), { message: /host bits set: the network is 10.244.0.0\/16/ });
  t.same(parseCidr('10.244.1.7/16', true), { base: 0x0af40000, prefix: 16 });
  t.throws(() => parseCidr('10.0.0.0/33'), { message: /above 32/ });
  t.throws(() => parseCidr('10.0.0.0'), { message: /not a CIDR/ });
  t.throws(() => parseCidr('10.0.0.0/x'), { message: /not a CIDR/ });
  const pool = parseCidr('10.244.0.0/16');
  t.ok(cidrContains(pool, parseIPv4('10.244.255.255')));
  t.notOk(cidrContains(pool, parseIPv4('10.245.0.0')));
  t.ok(cidrWithin(parseCidr('10.244.3.0/24'), pool));
  t.notOk(cidrWithin(pool, parseCidr('10.244.3.0/24')));
  t.ok(cidrOverlaps(parseCidr('10.0.0.0/8'), parseCidr('10.9.0.0/16')));
  t.notOk(cidrOverlaps(parseCidr('10.0.0.0/16'), parseCidr('10.1.0.0/16')));
  t.equal(formatCidr(parseCidr('0.0.0.0/0')), '0.0.0.0/0');
});

t.test('node blocks are carved from the pool', async (t) => {
  const pool = parseCidr('10.244.0.0/16');
  t.equal(blockCount(pool, 24), 256);
  t.equal(formatCidr(nthBlock(pool, 24, 0)), '10.244.0.0/24');
  t.equal(formatCidr(nthBlock(pool, 24, 255)), '10.244.255.0/24');
  t.equal(formatCidr(nthBlock(pool, 26, 5)), '10.244.1.64/26');
  t.throws(() => nthBlock(pool, 24, 256), { message: /outside 10.244.0.0\/16 \(it has 256 blocks of \/24\)/ });
  t.throws(() => nthBlock(pool, 8, 0), { message: /larger than the pool/ });
});

t.test('usable hosts skip network and broadcast', async (t) => {
  const b = parseCidr('10.1.0.0/29');
  t.same([...blockHosts(b)].map(formatIPv4), ['10.1.0.1', '10.1.0.2', '10.1.0.3', '10.1.0.4', '10.1.0.5', '10.1.0.6']);
  t.notOk(isUsableHost(b, parseIPv4('10.1.0.0')));
  t.notOk(isUsableHost(b, parseIPv4('10.1.0.7')));
  t.ok(isUsableHost(b, parseIPv4('10.1.0.6')));
  t.same([...blockHosts(parseCidr('10.1.0.4/31'))].map(formatIPv4), ['10.1.0.4', '10.1.0.5']);
});
