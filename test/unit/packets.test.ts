/**
 * The test packet library (test/helpers/packets.ts) against known vectors: the IPv4
 * header of the Wikipedia checksum example, RFC 1071's worked sum, and TCP/UDP/ICMP
 * checksums computed by an independent implementation (Python's struct). No root needed.
 */
import t from 'tap';
import * as P from '../helpers/packets.js';

const A = { mac: '0a:58:0a:f4:00:05', ip: '10.244.0.5' };
const B = { mac: '0a:58:0a:f4:00:06', ip: '10.244.0.6' };

t.test('addresses', async (t) => {
  t.same([...P.macBytes('0A:58:0a:f4:0:5')], [0x0a, 0x58, 0x0a, 0xf4, 0x00, 0x05]);
  t.equal(P.macString(P.macBytes('0A:58:0a:f4:00:05')), '0a:58:0a:f4:00:05', 'lower-cased');
  t.same([...P.ipBytes('10.244.0.5')], [10, 244, 0, 5]);
  t.equal(P.ipString(Buffer.from([192, 0, 2, 1])), '192.0.2.1');
  for (const bad of ['', 'aa:bb', 'aa:bb:cc:dd:ee:fg', 'aa:bb:cc:dd:ee:ff:00', 'aaa:bb:cc:dd:ee:ff']) t.throws(() => P.macBytes(bad), `MAC '${bad}'`);
  for (const bad of ['', '1.2.3', '1.2.3.256', '1.2.3.4.5', 'a.b.c.d', '-1.2.3.4']) t.throws(() => P.ipBytes(bad), `IP '${bad}'`);
  t.throws(() => P.macString(Buffer.alloc(5)), RangeError);
  t.throws(() => P.ipString(Buffer.alloc(6), 3), RangeError);
});

t.test('checksums', async (t) => {
  // RFC 1071 section 3: 00 01 f2 03 f4 f5 f6 f7 sums to dd f2.
  t.equal(P.onesSum(Buffer.from('0001f203f4f5f6f7', 'hex')), 0xddf2, 'RFC 1071 example sum');
  t.equal(P.inetChecksum(Buffer.from('0001f203f4f5f6f7', 'hex')), 0x220d, 'its checksum');
  t.equal(P.onesSum(Buffer.from([0x01]), Buffer.from([0x02])), 0x0102, 'pieces are concatenated before summing');
  t.equal(P.onesSum(Buffer.from([0xab])), 0xab00, 'an odd byte is padded with zero');
  t.equal(P.onesSum(Buffer.from('ffffffff', 'hex')), 0xffff, 'end-around carry');
  t.same([...P.pseudoHeader(A.ip, B.ip, 17, 13)], [10, 244, 0, 5, 10, 244, 0, 6, 0, 17, 0, 13]);
});

t.test('Ethernet', async (t) => {
  const f = P.ethernet({ dst: B.mac, src: A.mac, type: P.ETH_P_IP }, Buffer.from('xy'));
  t.equal(f.toString('hex'), '0a580af400060a580af400050800' + '7879');
  t.same(P.parseEthernet(f), { dst: B.mac, src: A.mac, type: 0x0800, payload: Buffer.from('xy') });
  t.equal(P.ethernet({ dst: B.mac, src: A.mac, type: 1 }, Buffer.alloc(2), 60).length, 60, 'padded to 60');
  t.equal(P.ethernet({ dst: B.mac, src: A.mac, type: 1 }, Buffer.alloc(100), 60).length, 114, 'never cut by padTo');
  t.throws(() => P.parseEthernet(Buffer.alloc(13)), RangeError);
});

t.test('ARP', async (t) => {
  const req = P.arpFrame({ sha: A.mac, sip: A.ip, tip: '169.254.1.1' });
  t.equal(req.length, 42);
  t.equal(req.subarray(14).toString('hex'),
    '0001' + '0800' + '06' + '04' + '0001' + '0a580af40005' + '0af40005' + '000000000000' + 'a9fe0101', 'RFC 826 layout');
  const f = P.parseFrame(req);
  t.equal(f.eth.dst, P.BROADCAST_MAC, 'a request is broadcast');
  t.equal(f.eth.src, A.mac);
  t.equal(f.eth.type, P.ETH_P_ARP);
  t.same(f.arp, { hrd: 1, pro: 0x0800, hln: 6, pln: 4, op: 1, sha: A.mac, sip: A.ip, tha: P.ZERO_MAC, tip: '169.254.1.1' });
  const reply = P.parseFrame(P.arpFrame({ op: P.ARPOP_REPLY, sha: B.mac, sip: B.ip, tha: A.mac, tip: A.ip, pad: true }));
  t.equal(reply.eth.dst, A.mac, 'a reply goes to tha');
  t.equal(reply.eth.src, B.mac);
  t.match(reply.arp, { op: 2, sha: B.mac, sip: B.ip, tha: A.mac, tip: A.ip });
  t.equal(P.arpFrame({ sha: A.mac, sip: A.ip, tip: B.ip, pad: true }).length, 60, 'padded like on the wire');
  t.equal(P.parseEthernet(P.arpFrame({ srcMac: B.mac, sha: A.mac, sip: A.ip, tip: B.ip })).src, B.mac, 'Ethernet source can differ from sha');
  const odd = P.parseArp(P.arp({ op: 3, sha: A.mac, sip: A.ip, tip: B.ip, hrd: 6, pro: 0x86dd, hln: 8, pln: 16 }));
  t.match(odd, { hrd: 6, pro: 0x86dd, hln: 8, pln: 16, op: 3 }, 'every field can be overridden');
  t.throws(() => P.parseFrame(P.truncate(req, 41)), RangeError, 'short ARP');
});

t.test('IPv4 header', async (t) => {
  // https://en.wikipedia.org/wiki/Internet_checksum#Calculating_the_IPv4_header_checksum
  const known = '45000073000040004011b861c0a80001c0a800c7';
  const h = P.ipv4({ src: '192.168.0.1', dst: '192.168.0.199', protocol: P.IPPROTO_UDP, ttl: 64, totalLength: 0x73 });
  t.equal(h.toString('hex'), known, 'the Wikipedia example, checksum b861');
  const ip = P.parseIpv4(Buffer.from(known, 'hex'));
  t.match(ip, { version: 4, headerLength: 20, totalLength: 0x73, id: 0, fragOff: 0x4000, ttl: 64, protocol: 17,
    checksum: 0xb861, expectedChecksum: 0xb861, checksumValid: true, src: '192.168.0.1', dst: '192.168.0.199' });

  const broken = Buffer.from(known, 'hex');
  broken[8] = 63;
  t.notOk(P.parseIpv4(broken).checksumValid, 'a changed TTL invalidates the checksum');
  t.equal(P.parseIpv4(broken).expectedChecksum, 0xb961, 'and the recomputed one is one higher in the TTL byte');

  const withOpts = P.ipv4({ src: A.ip, dst: B.ip, protocol: 1, options: Buffer.from([0x94, 0x04, 0, 0, 1]) }, Buffer.from('data'));
  const p = P.parseIpv4(withOpts);
  t.equal(p.headerLength, 28, 'options padded to a multiple of 4');
  t.equal(withOpts[0], 0x47, 'ihl 7');
  t.same([...p.options], [0x94, 0x04, 0, 0, 1, 0, 0, 0]);
  t.ok(p.checksumValid, 'checksum covers the options');
  t.equal(p.totalLength, 32);
  t.same(p.payload, Buffer.from('data'));
  t.throws(() => P.ipv4({ src: A.ip, dst: B.ip, protocol: 1, options: Buffer.alloc(41) }), 'options over 40 bytes');

  const padded = Buffer.concat([P.ipv4({ src: A.ip, dst: B.ip, protocol: 1 }, Buffer.from('ab')), Buffer.alloc(10)]);
  t.same(P.parseIpv4(padded).payload, Buffer.from('ab'), 'payload stops at the total length (Ethernet padding excluded)');

  t.equal(P.ipv4({ src: A.ip, dst: B.ip, protocol: 1, ihl: 4 })[0], 0x44, 'ihl override');
  t.equal(P.ipv4({ src: A.ip, dst: B.ip, protocol: 1, version: 6 })[0], 0x65, 'version override');
  t.equal(P.ipv4({ src: A.ip, dst: B.ip, protocol: 1, checksum: 0xbeef }).readUInt16BE(10), 0xbeef, 'checksum override');
  t.throws(() => P.parseIpv4(Buffer.alloc(19)), RangeError, 'shorter than 20');
  t.throws(() => P.parseIpv4(P.ipv4({ src: A.ip, dst: B.ip, protocol: 1, ihl: 4 })), RangeError, 'ihl < 5');
  t.throws(() => P.parseIpv4(P.ipv4({ src: A.ip, dst: B.ip, protocol: 1, ihl: 15 })), RangeError, 'ihl past the end');
});

// Reference checksums below were computed with an independent implementation (Python struct + RFC 1071 sum).
const addrs: P.FrameAddrs = { srcMac: A.mac, dstMac: B.mac, src: A.ip, dst: B.ip };

t.test('UDP', async (t) => {
  const d = P.udp({ src: A.ip, dst: B.ip, sport: 5353, dport: 53 }, Buffer.from('hello'));
  t.equal(d.toString('hex'), '14e90035000d' + '90f1' + Buffer.from('hello').toString('hex'), 'header and checksum 0x90f1');
  const f = P.parseFrame(P.udpFrame(addrs, 5353, 53, Buffer.from('hello')));
  t.equal(f.ipv4!.protocol, P.IPPROTO_UDP);
  t.ok(f.ipv4!.checksumValid);
  t.match(f.l4, { sport: 5353, dport: 53, checksum: 0x90f1, checksumValid: true, payload: Buffer.from('hello') });
  const bad = P.udpFrame(addrs, 5353, 53, Buffer.from('hello'));
  bad[bad.length - 1] ^= 1;
  t.notOk(P.parseFrame(bad).l4!.checksumValid, 'a flipped payload bit breaks the checksum');
  const other = Buffer.from(P.udpFrame(addrs, 5353, 53, Buffer.from('hello')));
  other[14 + 19] = 7; // destination address: the pseudo-header changes
  t.notOk(P.parseL4(P.parseIpv4(other.subarray(14))).checksumValid, 'the checksum covers the pseudo-header');
  const none = P.udpFrame(addrs, 1, 2);
  none.writeUInt16BE(0, 14 + 20 + 6);
  t.ok(P.parseFrame(none).l4!.checksumValid, 'checksum 0 means none');
  for (let i = 0; i < 64; i++) {
    const s = P.udp({ src: A.ip, dst: B.ip, sport: i, dport: 0xffff - i }, Buffer.alloc(i, i));
    if (s.readUInt16BE(6) === 0) t.fail('a computed checksum of 0 must be sent as 0xffff');
  }
});

t.test('TCP', async (t) => {
  const s = P.tcp({ src: A.ip, dst: B.ip, sport: 40000, dport: 80, seq: 1 }, Buffer.from('hello'));
  t.equal(s.toString('hex'), '9c400050' + '00000001' + '00000000' + '5002ffff' + 'b987' + '0000' + Buffer.from('hello').toString('hex'),
    'header and checksum 0xb987');
  const f = P.parseFrame(P.tcpFrame(addrs, 40000, 80, Buffer.from('hello'), { seq: 1 }));
  t.match(f.l4, { protocol: 6, sport: 40000, dport: 80, checksum: 0xb987, checksumValid: true, payload: Buffer.from('hello') });
  t.equal(P.tcp({ ...addrs, sport: 1, dport: 2, flags: P.TCP_SYN | P.TCP_ACK })[13], 0x12, 'flags');
  t.equal(P.tcp({ ...addrs, sport: 1, dport: 2, seq: 0xffffffff }).readUInt32BE(4), 0xffffffff, 'seq is 32-bit');
});

t.test('ICMP echo', async (t) => {
  const m = P.icmpEcho({ id: 0x1234, seq: 1 }, Buffer.from('ping'));
  t.equal(m.toString('hex'), '0800' + '06fa' + '1234' + '0001' + Buffer.from('ping').toString('hex'), 'checksum 0x06fa');
  const f = P.parseFrame(P.icmpFrame({ ...addrs, ttl: 7, id: 99 }));
  t.match(f.ipv4, { ttl: 7, id: 99, protocol: 1, src: A.ip, dst: B.ip, checksumValid: true });
  t.match(f.l4, { type: P.ICMP_ECHO_REQUEST, code: 0, sport: 0, dport: 0, checksumValid: true, payload: Buffer.from('ping') });
  t.equal(P.icmpEcho({ type: P.ICMP_ECHO_REPLY })[0], 0, 'echo reply');
});

t.test('VXLAN', async (t) => {
  const inner = P.icmpFrame({ srcMac: A.mac, dstMac: B.mac, src: A.ip, dst: B.ip });
  const v = P.vxlan({ vni: 0x0103ed }, inner);
  // RFC 7348 5: flags (I = 0x08), 24 reserved bits, 24-bit VNI, 8 reserved bits
  t.same([...v.subarray(0, 8)], [0x08, 0, 0, 0, 0x01, 0x03, 0xed, 0], 'header bytes');
  t.same(v.subarray(8), inner, 'the inner frame follows');
  t.same(P.parseVxlan(v), { flags: 0x08, vni: 0x0103ed, reserved: 0, inner });
  t.same(P.parseVxlan(P.vxlan({ vni: 7, flags: 0x88, reserved: 1 }, Buffer.alloc(0))), { flags: 0x88, vni: 7, reserved: 1, inner: Buffer.alloc(0) });
  for (const bad of [-1, 0x1000000, 1.5]) t.throws(() => P.vxlan({ vni: bad }, inner), RangeError, `VNI ${bad}`);
  t.throws(() => P.parseVxlan(Buffer.alloc(7)), RangeError);
  const f = P.parseFrame(P.icmpFrame({ srcMac: A.mac, dstMac: B.mac, src: A.ip, dst: B.ip, tos: 0xb9 }));
  t.equal(f.ipv4!.tos, 0xb9, 'a frame can carry a TOS');
});

t.test('parseFrame', async (t) => {
  t.same(Object.keys(P.parseFrame(P.ethernet({ dst: B.mac, src: A.mac, type: P.ETH_P_IPV6 }, Buffer.alloc(40)))), ['eth'],
    'unknown ethertypes stop at Ethernet');
  const gre = P.ethernet({ dst: B.mac, src: A.mac, type: P.ETH_P_IP }, P.ipv4({ src: A.ip, dst: B.ip, protocol: 47 }, Buffer.alloc(8)));
  t.equal(P.parseFrame(gre).l4, undefined, 'unknown IP protocols stop at IPv4');
  const frag = P.ethernet({ dst: B.mac, src: A.mac, type: P.ETH_P_IP }, P.ipv4({ src: A.ip, dst: B.ip, protocol: 17, fragOff: 0x0010 }, Buffer.alloc(3)));
  t.equal(P.parseFrame(frag).l4, undefined, 'a non-first fragment has no L4 header');
  t.same(P.OFF, { ethDst: 0, ethSrc: 6, ethType: 12, ipTtl: 22, ipCheck: 24 });
  const f = P.udpFrame({ ...addrs, ttl: 33 }, 1, 2);
  t.equal(f[P.OFF.ipTtl], 33, 'OFF.ipTtl points at the TTL');
  t.equal(f.readUInt16BE(P.OFF.ipCheck), P.parseIpv4(f.subarray(14)).checksum, 'OFF.ipCheck points at the checksum');
});

t.test('truncate and diffBytes', async (t) => {
  const f = P.icmpFrame(addrs);
  const c = P.truncate(f, 20);
  t.equal(c.length, 20);
  c[0] = 0xff;
  t.not(f[0], 0xff, 'truncate copies');
  t.same(P.truncate(f, 1000), f, 'longer than the frame: the whole frame');
  t.same(P.diffBytes(Buffer.from([1, 2, 3]), Buffer.from([1, 9, 3, 4])), [1, 3]);
  t.same(P.diffBytes(f, Buffer.from(f)), []);
});
