import t from 'tap';
import { isIPv6 } from 'node:net';
import {
  cidrContainsAny, compareIp, familyOf, formatCidrAny, formatIp, ipv6FromBigInt, ipv6FromBytes, ipv6ToBytes, parseCidrAny, parseIp, type IpAddr,
} from '../../src/util/ip.js';
import { parseIPv4 } from '../../src/util/ipv4.js';

const v6 = (s: string) => {
  const a = parseIp(s);
  if (a.family !== 6) throw new Error(`${s} is not IPv6`);
  return a.v6;
};

t.test('IPv6 is formatted in the RFC 5952 canonical form', async (t) => {
  const cases: [string, string][] = [
    // RFC 5952 section 4: leading zeros, lowercase, :: for the longest run, first on a tie, never for one group
    ['2001:0db8:0000:0000:0000:0000:0000:0001', '2001:db8::1'],
    ['2001:db8:0:0:0:0:2:1', '2001:db8::2:1'],
    ['2001:db8::0:1', '2001:db8::1'],
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
    ['2001:0:0:1:0:0:0:1', '2001:0:0:1::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['2001:DB8::AbCd', '2001:db8::abcd'],
    ['0:0:0:0:0:0:0:0', '::'],
    ['0:0:0:0:0:0:0:1', '::1'],
    ['1:0:0:0:0:0:0:0', '1::'],
    ['fe80:0000::0001', 'fe80::1'],
    // RFC 5952 section 5: IPv4-mapped addresses in mixed notation; other embedded IPv4 in hex
    ['::ffff:1.2.3.4', '::ffff:1.2.3.4'],
    ['0:0:0:0:0:FFFF:0102:0304', '::ffff:1.2.3.4'],
    ['::1.2.3.4', '::102:304'],
    ['64:ff9b::192.0.2.33', '64:ff9b::c000:221'],
    ['1:2:3:4:5:6:7.8.9.10', '1:2:3:4:5:6:708:90a'],
    [' fd00::1 ', 'fd00::1'],
  ];
  for (const [text, canonical] of cases) {
    const a = parseIp(text);
    t.equal(a.family, 6, text);
    t.equal(formatIp(a), canonical, text);
    t.same(parseIp(canonical), a, `${canonical} parses back`);
  }
  t.equal(v6('2001:db8::1'), 0x20010db8000000000000000000000001n);
  t.equal(v6('::ffff:10.0.0.1'), 0xffff0a000001n);
});

t.test('IPv4 through the family level', async (t) => {
  const a = parseIp('10.244.0.1');
  t.strictSame(a, { family: 4, v4: parseIPv4('10.244.0.1') });
  t.equal(formatIp(a), '10.244.0.1');
  t.equal(familyOf('10.244.0.1'), 4);
  t.equal(familyOf('fd00::1'), 6);
  t.equal(familyOf('::ffff:10.0.0.1'), 6);
  for (const bad of ['', 'x', '10.0.0', 'fe80::1%eth0', '1::2::3', '10.0.0.0/8']) t.equal(familyOf(bad), undefined, bad);
});

t.test('round trips: random addresses format, parse back and are IPv6 to node:net', async (t) => {
  let seed = 0x5eed;
  const rnd16 = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) >>> 8) & 0xffff;
  for (let n = 0; n < 500; n++) {
    // zero runs are likely, so :: lands everywhere
    let x = 0n;
    for (let i = 0; i < 8; i++) x = (x << 16n) | BigInt(rnd16() % 3 === 0 ? 0 : rnd16());
    const a: IpAddr = { family: 6, v6: ipv6FromBigInt(x) };
    const text = formatIp(a);
    if (!isIPv6(text) || text !== text.toLowerCase() || /(^|:)0[0-9a-f]/.test(text) || text.split('::').length > 2) t.fail(`bad form ${text}`);
    if (parseIp(text).family !== 6 || (parseIp(text) as { v6: bigint }).v6 !== x) t.fail(`${text} does not parse back to ${x.toString(16)}`);
    if (ipv6FromBytes(ipv6ToBytes(a.v6)) !== a.v6) t.fail(`bytes of ${text}`);
  }
  t.pass('500 random addresses round trip');
  t.same([...ipv6ToBytes(v6('2001:db8::1'))], [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
  t.throws(() => ipv6FromBigInt(-1n), { name: 'RangeError' });
  t.throws(() => ipv6FromBigInt(1n << 128n), { name: 'RangeError' });
  t.throws(() => ipv6FromBytes(new Uint8Array(15)), { message: 'IPv6 address at 0 is past the end (15 bytes)' });
});

t.test('every rejection names the text and what is wrong', async (t) => {
  const cases: [string, string][] = [
    ['fe80::1%eth0', "'fe80::1%eth0' is not an IPv6 address: zone ids (%eth0) are not accepted"],
    ['1::2::3', "'1::2::3' is not an IPv6 address: it has more than one '::'"],
    [':::', "':::' is not an IPv6 address: a group is empty (a single ':' at the start or the end, or ':::')"],
    ['1:::2', "'1:::2' is not an IPv6 address: a group is empty (a single ':' at the start or the end, or ':::')"],
    [':1::', "':1::' is not an IPv6 address: a group is empty (a single ':' at the start or the end, or ':::')"],
    ['1:2:3:4:5:6:7:', "'1:2:3:4:5:6:7:' is not an IPv6 address: a group is empty (a single ':' at the start or the end, or ':::')"],
    ['00001::', "'00001::' is not an IPv6 address: group '00001' has more than 4 hex digits"],
    ['1:2:3:4:5:6:7', "'1:2:3:4:5:6:7' is not an IPv6 address: it has 7 groups, an IPv6 address has 8 (fewer only with '::')"],
    ['1:2:3:4:5:6:7:8:9', "'1:2:3:4:5:6:7:8:9' is not an IPv6 address: it has 9 groups, an IPv6 address has 8 (fewer only with '::')"],
    ['1:2:3:4:5:6:7::8', "'1:2:3:4:5:6:7::8' is not an IPv6 address: it has 8 groups beside '::', which stands for at least one zero group (7 at most)"],
    ['1:2:3:4:5:6:7:1.2.3.4', "'1:2:3:4:5:6:7:1.2.3.4' is not an IPv6 address: it has 9 groups, an IPv6 address has 8 (fewer only with '::')"],
    ['1.2.3.4::', "'1.2.3.4::' is not an IPv6 address: the IPv4 part 1.2.3.4 is not the last 32 bits"],
    ['::1.2.3.4:5', "'::1.2.3.4:5' is not an IPv6 address: the IPv4 part 1.2.3.4 is not the last 32 bits"],
    ['::ffff:1.2.3.256', "'::ffff:1.2.3.256' is not an IPv6 address: its IPv4 part 1.2.3.256 is wrong: 256 is above 255"],
    ['::ffff:01.2.3.4', "'::ffff:01.2.3.4' is not an IPv6 address: its IPv4 part 01.2.3.4 is wrong: '01' has a leading zero"],
    ['::1.2.3', "'::1.2.3' is not an IPv6 address: its IPv4 part 1.2.3 is wrong: it has 3 parts, an IPv4 address has 4"],
    ['g::', "'g::' is not an IPv6 address: 'g' is not a hex digit, ':' or '.'"],
    ['fd00::/64', "'fd00::/64' is not an IPv6 address: '/' is not a hex digit, ':' or '.'"],
    ['', "'' is not an IP address (an IPv4 address like 10.0.0.1 or an IPv6 address like fd00::1)"],
    ['localhost', "'localhost' is not an IP address (an IPv4 address like 10.0.0.1 or an IPv6 address like fd00::1)"],
    ['10.0.0', "'10.0.0' is not an IPv4 address: it has 3 parts, an IPv4 address has 4"],
    ['10..0.1', "'10..0.1' is not an IPv4 address: a part is empty"],
    ['010.0.0.1', "'010.0.0.1' is not an IPv4 address: '010' has a leading zero"],
    ['10.0.0.256', "'10.0.0.256' is not an IPv4 address: 256 is above 255"],
    ['10.0.0.1234', "'10.0.0.1234' is not an IPv4 address: 1234 is above 255"],
    ['10.0.0.x', "'10.0.0.x' is not an IPv4 address: 'x' is not a decimal number"],
  ];
  for (const [text, message] of cases) t.throws(() => parseIp(text), { message }, text);
});

t.test('CIDRs of either family', async (t) => {
  t.strictSame(parseCidrAny('10.244.0.0/16'), { family: 4, base: 0x0af40000, prefix: 16 });
  t.strictSame(parseCidrAny('fd00:10::/32'), { family: 6, base: 0xfd000010n << 96n, prefix: 32 });
  for (const c of ['::/0', '2001:db8::/32', 'fd00:1:2:3::/64', '2001:db8::1/128', '::ffff:0.0.0.0/96', '10.0.0.0/8', '0.0.0.0/0']) {
    t.equal(formatCidrAny(parseCidrAny(c)), c, c);
  }
  t.equal(formatCidrAny(parseCidrAny('2001:DB8:0::/48')), '2001:db8::/48');
  t.throws(() => parseCidrAny('fd00::1/64'), { message: "'fd00::1/64' has host bits set: the network is fd00::/64" });
  t.throws(() => parseCidrAny('2001:db8:1:2:3:4:5:6/63'), { message: "'2001:db8:1:2:3:4:5:6/63' has host bits set: the network is 2001:db8:1:2::/63" });
  t.throws(() => parseCidrAny('10.244.1.0/16'), { message: "'10.244.1.0/16' has host bits set: the network is 10.244.0.0/16" });
  t.equal(formatCidrAny(parseCidrAny('fd00::1/64', true)), 'fd00::/64');
  t.throws(() => parseCidrAny('fd00::/129'), { message: "'fd00::/129': prefix length 129 is above 128" });
  t.throws(() => parseCidrAny('fd00::'), { message: "'fd00::' is not a CIDR like fd00::/64" });
  t.throws(() => parseCidrAny('fd00::/6x'), { message: "'fd00::/6x' is not a CIDR like fd00::/64" });
  t.throws(() => parseCidrAny('fd00::/64/1'), { message: "'fd00::/64/1' is not a CIDR like fd00::/64" });
  t.throws(() => parseCidrAny('fd00::%eth0/64'), { message: "'fd00::%eth0/64': 'fd00::%eth0' is not an IPv6 address: zone ids (%eth0) are not accepted" });
  t.throws(() => parseCidrAny('10.0.0.0/33'), { message: /above 32/ });
});

t.test('containment at /0, /64, /128, never across families', async (t) => {
  const all6 = parseCidrAny('::/0');
  const net64 = parseCidrAny('2001:db8:1:2::/64');
  const one = parseCidrAny('2001:db8:1:2::5/128');
  const mapped = parseCidrAny('::ffff:0.0.0.0/96');
  const all4 = parseCidrAny('0.0.0.0/0');
  const a = (s: string) => parseIp(s);
  t.ok(cidrContainsAny(all6, a('::')));
  t.ok(cidrContainsAny(all6, a('ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff')));
  t.ok(cidrContainsAny(net64, a('2001:db8:1:2::')));
  t.ok(cidrContainsAny(net64, a('2001:db8:1:2:ffff:ffff:ffff:ffff')));
  t.notOk(cidrContainsAny(net64, a('2001:db8:1:3::')));
  t.notOk(cidrContainsAny(net64, a('2001:db8:1:1:ffff:ffff:ffff:ffff')));
  t.ok(cidrContainsAny(one, a('2001:db8:1:2::5')));
  t.notOk(cidrContainsAny(one, a('2001:db8:1:2::4')));
  t.notOk(cidrContainsAny(one, a('2001:db8:1:2::6')));
  // families never mix: not even ::/0 holds an IPv4 address, not even 0.0.0.0/0 an IPv6 one,
  // and an IPv4-mapped CIDR holds the mapped IPv6 address, not the IPv4 one
  for (const v4 of ['0.0.0.0', '10.0.0.1', '255.255.255.255']) {
    t.notOk(cidrContainsAny(all6, a(v4)), `::/0 does not hold ${v4}`);
    t.notOk(cidrContainsAny(mapped, a(v4)), `::ffff:0.0.0.0/96 does not hold ${v4}`);
    t.ok(cidrContainsAny(all4, a(v4)));
  }
  t.ok(cidrContainsAny(mapped, a('::ffff:10.0.0.1')));
  for (const v of ['::', '::ffff:10.0.0.1', '2001:db8::1', '::a00:1']) t.notOk(cidrContainsAny(all4, a(v)), `0.0.0.0/0 does not hold ${v}`);
  t.notOk(cidrContainsAny(parseCidrAny('10.0.0.1/32'), a('::ffff:10.0.0.1')));
});

t.test('addresses order IPv4 first, then by value', async (t) => {
  const texts = ['2001:db8::1', '10.0.0.2', '::1', '10.0.0.1', 'ffff::', '::', '255.255.255.255'];
  t.same(texts.map(parseIp).sort(compareIp).map(formatIp), ['10.0.0.1', '10.0.0.2', '255.255.255.255', '::', '::1', '2001:db8::1', 'ffff::']);
});
