import t from 'tap';
import {
  blockCount, blockHosts, cidrContains, cidrLast, cidrOverlaps, cidrWithin, formatCidr, formatIPv4, ipv4Add, ipv4FromUint32, ipv4Network, isUsableHost, nthBlock,
  parseCidr, parseIPv4,
} from '../../src/util/ipv4.js';

t.test('IPv4 addresses parse and format', async (t) => {
  t.equal(parseIPv4('10.244.0.1'), 0x0af40001);
  t.equal(parseIPv4('255.255.255.255'), 0xffffffff);
  t.equal(formatIPv4(ipv4FromUint32(0xc0a80101)), '192.168.1.1');
  for (const bad of ['10.0.0', '10.0.0.256', '1.2.3.4.5', 'a.b.c.d', '', '01.2.3.4', ' 1.2.3.4x']) {
    t.throws(() => parseIPv4(bad), { message: /is not an IPv4 address/ }, bad);
  }
});

t.test('CIDRs: strict host bits, containment, overlap', async (t) => {
  t.strictSame(parseCidr('10.244.0.0/16'), { family: 4, base: 0x0af40000, prefix: 16 });
  t.throws(() => parseCidr('10.244.1.0/16'), { message: /host bits set: the network is 10.244.0.0\/16/ });
  t.strictSame(parseCidr('10.244.1.7/16', true), { family: 4, base: 0x0af40000, prefix: 16 });
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

t.test('addresses are made by the checked helpers, never wrapped', async (t) => {
  t.equal(ipv4FromUint32(0), parseIPv4('0.0.0.0'));
  t.equal(ipv4FromUint32(0xffffffff), parseIPv4('255.255.255.255'));
  for (const bad of [-1, 2 ** 32, 1.5, NaN, Infinity]) {
    t.throws(() => ipv4FromUint32(bad), { name: 'RangeError', message: `${bad} is not an IPv4 address (an integer in 0..4294967295)` }, String(bad));
  }
  t.equal(formatIPv4(ipv4Add(parseIPv4('10.0.0.255'), 1)), '10.0.1.0');
  t.equal(formatIPv4(ipv4Add(parseIPv4('10.0.1.0'), -1)), '10.0.0.255');
  t.throws(() => ipv4Add(parseIPv4('255.255.255.255'), 1), { message: '255.255.255.255 + 1 is outside the IPv4 address space' });
  t.throws(() => ipv4Add(parseIPv4('0.0.0.0'), -1), { message: '0.0.0.0 - 1 is outside the IPv4 address space' });
  t.equal(formatIPv4(ipv4Network(parseIPv4('10.244.7.9'), 16)), '10.244.0.0');
  t.equal(formatIPv4(ipv4Network(parseIPv4('255.255.255.255'), 0)), '0.0.0.0');
  t.equal(formatIPv4(ipv4Network(parseIPv4('255.255.255.255'), 32)), '255.255.255.255');
  t.equal(formatIPv4(cidrLast(parseCidr('10.244.0.0/16'))), '10.244.255.255');
  t.equal(formatIPv4(cidrLast(parseCidr('0.0.0.0/0'))), '255.255.255.255');
  t.equal(formatIPv4(cidrLast(parseCidr('10.1.2.3/32'))), '10.1.2.3');
});

t.test('the brand rejects a plain number where an address is wanted (checked by tsc)', async (t) => {
  const port = 8080;
  const pool = parseCidr('10.244.0.0/16');
  // Each line below must fail to type-check: `tsc -p tsconfig.test.json` fails if the brand ever
  // stops rejecting a plain number (the @ts-expect-error would then be unused).
  // @ts-expect-error a port is not an address
  t.equal(formatIPv4(port), '0.0.31.144');
  // @ts-expect-error a plain number is not an address
  t.equal(cidrContains(pool, 0x0af40001), true);
  // @ts-expect-error a plain number is not an address
  t.equal(isUsableHost(pool, 0x0af40001), true);
  // @ts-expect-error a CIDR's base is an address, not a number
  t.equal(formatCidr({ family: 4, base: 0x0af40000, prefix: 16 }), '10.244.0.0/16');
  // @ts-expect-error a CIDR carries its family
  t.equal(formatCidr({ base: parseIPv4('10.244.0.0'), prefix: 16 }), '10.244.0.0/16');
  // Reading an address as a number needs no cast.
  const n: number = parseIPv4('10.244.0.1');
  t.equal(n, 0x0af40001);
});
