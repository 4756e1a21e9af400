/**
 * A small packet-crafting and parsing library for tests and benchmarks: Ethernet, ARP, IPv4 (with
 * options), ICMP echo, UDP and TCP, built as Buffers with correct checksums, and
 * parsed back into plain objects to assert on.
 *
 * Addresses are strings throughout: MACs as "aa:bb:cc:dd:ee:ff", IPv4 as dotted quads.
 * Builders nest: `ethernet({...}, ipv4({...}, udp({...}, payload)))`; the *Frame helpers
 * below do the nesting for the common cases. Nothing here validates more than it must:
 * tests need to build broken packets too (any field can be overridden, and
 * `truncate` cuts a frame short).
 */

export const ETH_HLEN = 14;
export const ETH_P_IP = 0x0800;
export const ETH_P_ARP = 0x0806;
export const ETH_P_IPV6 = 0x86dd;
export const ETH_P_8021Q = 0x8100;

export const ARPHRD_ETHER = 1;
export const ARPOP_REQUEST = 1;
export const ARPOP_REPLY = 2;

export const IPPROTO_ICMP = 1;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;

export const ICMP_ECHO_REPLY = 0;
export const ICMP_ECHO_REQUEST = 8;

export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_RST = 0x04;
export const TCP_PSH = 0x08;
export const TCP_ACK = 0x10;

export const BROADCAST_MAC = 'ff:ff:ff:ff:ff:ff';
export const ZERO_MAC = '00:00:00:00:00:00';

// ---------------------------------------------------------------------------
// Addresses

/** "aa:bb:cc:dd:ee:ff" -> 6 bytes. */
export function macBytes(mac: string): Buffer {
  const parts = mac.split(':');
  if (parts.length !== 6 || parts.some((p) => !/^[0-9a-fA-F]{1,2}$/.test(p))) throw new Error(`bad MAC address '${mac}'`);
  return Buffer.from(parts.map((p) => parseInt(p, 16)));
}

/** 6 bytes at `off` -> "aa:bb:cc:dd:ee:ff" (lower case). */
export function macString(buf: Uint8Array, off = 0): string {
  if (off + 6 > buf.length) throw new RangeError(`MAC at ${off} is past the end (${buf.length} bytes)`);
  return Array.from(buf.subarray(off, off + 6), (b) => b.toString(16).padStart(2, '0')).join(':');
}

/** "10.0.0.1" -> 4 bytes in network order. */
export function ipBytes(ip: string): Buffer {
  const parts = ip.split('.');
  if (parts.length !== 4 || parts.some((p) => !/^\d{1,3}$/.test(p) || Number(p) > 255)) throw new Error(`bad IPv4 address '${ip}'`);
  return Buffer.from(parts.map(Number));
}

/** 4 bytes at `off` -> "10.0.0.1". */
export function ipString(buf: Uint8Array, off = 0): string {
  if (off + 4 > buf.length) throw new RangeError(`IPv4 address at ${off} is past the end (${buf.length} bytes)`);
  return Array.from(buf.subarray(off, off + 4)).join('.');
}

// ---------------------------------------------------------------------------
// Checksums (RFC 1071)

/** The 16-bit one's complement sum of `bufs` (concatenated, odd length padded with zero), folded. */
export function onesSum(...bufs: Uint8Array[]): number {
  const data = Buffer.concat(bufs);
  let sum = 0;
  for (let i = 0; i + 1 < data.length; i += 2) sum += (data[i]! << 8) | data[i + 1]!;
  if (data.length % 2) sum += data[data.length - 1]! << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

/** The Internet checksum of `bufs`: the complement of their one's complement sum. */
export function inetChecksum(...bufs: Uint8Array[]): number {
  return ~onesSum(...bufs) & 0xffff;
}

/** The TCP/UDP pseudo-header of RFC 793/768. */
export function pseudoHeader(src: string, dst: string, protocol: number, length: number): Buffer {
  const b = Buffer.alloc(12);
  ipBytes(src).copy(b, 0);
  ipBytes(dst).copy(b, 4);
  b[9] = protocol;
  b.writeUInt16BE(length, 10);
  return b;
}

// ---------------------------------------------------------------------------
// Builders

export interface EthernetOpts {
  dst: string;
  src: string;
  /** Ethertype, e.g. ETH_P_IP. */
  type: number;
}

/** An Ethernet II frame (no FCS). `padTo` pads with zeros to a minimum length (60 on the wire). */
export function ethernet(o: EthernetOpts, payload: Uint8Array = Buffer.alloc(0), padTo = 0): Buffer {
  const h = Buffer.alloc(ETH_HLEN);
  macBytes(o.dst).copy(h, 0);
  macBytes(o.src).copy(h, 6);
  h.writeUInt16BE(o.type, 12);
  const frame = Buffer.concat([h, payload]);
  return frame.length < padTo ? Buffer.concat([frame, Buffer.alloc(padTo - frame.length)]) : frame;
}

export interface ArpOpts {
  op: number;
  sha: string;
  sip: string;
  /** Default 00:00:00:00:00:00, as in a request. */
  tha?: string;
  tip: string;
  /** Defaults describe Ethernet/IPv4: hrd 1, pro 0x0800, hln 6, pln 4. */
  hrd?: number;
  pro?: number;
  hln?: number;
  pln?: number;
}

/** The 28-byte Ethernet/IPv4 ARP packet (RFC 826). */
export function arp(o: ArpOpts): Buffer {
  const b = Buffer.alloc(28);
  b.writeUInt16BE(o.hrd ?? ARPHRD_ETHER, 0);
  b.writeUInt16BE(o.pro ?? ETH_P_IP, 2);
  b[4] = o.hln ?? 6;
  b[5] = o.pln ?? 4;
  b.writeUInt16BE(o.op, 6);
  macBytes(o.sha).copy(b, 8);
  ipBytes(o.sip).copy(b, 14);
  macBytes(o.tha ?? ZERO_MAC).copy(b, 18);
  ipBytes(o.tip).copy(b, 24);
  return b;
}

export interface Ipv4Opts {
  src: string;
  dst: string;
  protocol: number;
  ttl?: number;
  id?: number;
  tos?: number;
  /** Flags and fragment offset, as the 16-bit field (default 0x4000: DF). */
  fragOff?: number;
  /** IP options, padded with zeros (end of options) to a multiple of 4 bytes; at most 40. */
  options?: Uint8Array;
  /** Override the IHL (in 32-bit words) written to the header, e.g. to build a malformed one. */
  ihl?: number;
  /** Override the version nibble (default 4). */
  version?: number;
  /** Override the total length (default header + payload). */
  totalLength?: number;
  /** Override the header checksum (default: computed). */
  checksum?: number;
}

/** An IPv4 packet: header (with a correct checksum unless overridden) followed by `payload`. */
export function ipv4(o: Ipv4Opts, payload: Uint8Array = Buffer.alloc(0)): Buffer {
  const opt = Buffer.from(o.options ?? []);
  const optLen = Math.ceil(opt.length / 4) * 4;
  if (optLen > 40) throw new Error(`IPv4 options of ${opt.length} bytes exceed 40`);
  const hlen = 20 + optLen;
  const h = Buffer.alloc(hlen);
  h[0] = ((o.version ?? 4) << 4) | ((o.ihl ?? hlen / 4) & 0x0f);
  h[1] = o.tos ?? 0;
  h.writeUInt16BE(o.totalLength ?? hlen + payload.length, 2);
  h.writeUInt16BE(o.id ?? 0, 4);
  h.writeUInt16BE(o.fragOff ?? 0x4000, 6);
  h[8] = o.ttl ?? 64;
  h[9] = o.protocol;
  ipBytes(o.src).copy(h, 12);
  ipBytes(o.dst).copy(h, 16);
  opt.copy(h, 20);
  h.writeUInt16BE(o.checksum ?? inetChecksum(h), 10);
  return Buffer.concat([h, payload]);
}

export interface IcmpEchoOpts {
  /** ICMP_ECHO_REQUEST (default) or ICMP_ECHO_REPLY. */
  type?: number;
  id?: number;
  seq?: number;
}

/** An ICMP echo message with a correct checksum. */
export function icmpEcho(o: IcmpEchoOpts = {}, payload: Uint8Array = Buffer.alloc(0)): Buffer {
  const h = Buffer.alloc(8);
  h[0] = o.type ?? ICMP_ECHO_REQUEST;
  h.writeUInt16BE(o.id ?? 0, 4);
  h.writeUInt16BE(o.seq ?? 0, 6);
  const msg = Buffer.concat([h, payload]);
  msg.writeUInt16BE(inetChecksum(msg), 2);
  return msg;
}

export const ICMP_DEST_UNREACH = 3;
export const ICMP_TIME_EXCEEDED = 11;
export const ICMP_PORT_UNREACH = 3;
export const ICMP_FRAG_NEEDED = 4;

export interface IcmpErrorOpts {
  /** ICMP_DEST_UNREACH or ICMP_TIME_EXCEEDED (or any other error type). */
  type: number;
  code: number;
  /** Fragmentation needed: the next hop's MTU (bytes 6-7 of the header). */
  mtu?: number;
}

/** An ICMP error message quoting `quoted` (an IPv4 packet, as much of it as the sender quotes), with a correct checksum. */
export function icmpError(o: IcmpErrorOpts, quoted: Uint8Array): Buffer {
  const h = Buffer.alloc(8);
  h[0] = o.type;
  h[1] = o.code;
  h.writeUInt16BE(o.mtu ?? 0, 6);
  const msg = Buffer.concat([h, quoted]);
  msg.writeUInt16BE(inetChecksum(msg), 2);
  return msg;
}

export interface L4Opts {
  /** IPv4 source and destination: they enter the checksum through the pseudo-header. */
  src: string;
  dst: string;
  sport: number;
  dport: number;
}

/** A UDP datagram with a correct checksum (a computed 0 is sent as 0xffff, RFC 768). */
export function udp(o: L4Opts, payload: Uint8Array = Buffer.alloc(0)): Buffer {
  const d = Buffer.alloc(8 + payload.length);
  d.writeUInt16BE(o.sport, 0);
  d.writeUInt16BE(o.dport, 2);
  d.writeUInt16BE(d.length, 4);
  Buffer.from(payload).copy(d, 8);
  const sum = inetChecksum(pseudoHeader(o.src, o.dst, IPPROTO_UDP, d.length), d);
  d.writeUInt16BE(sum === 0 ? 0xffff : sum, 6);
  return d;
}

export interface TcpOpts extends L4Opts {
  seq?: number;
  ack?: number;
  /** TCP_SYN | TCP_ACK ...; default TCP_SYN. */
  flags?: number;
  window?: number;
}

/** A TCP segment (20-byte header, no options) with a correct checksum. */
export function tcp(o: TcpOpts, payload: Uint8Array = Buffer.alloc(0)): Buffer {
  const s = Buffer.alloc(20 + payload.length);
  s.writeUInt16BE(o.sport, 0);
  s.writeUInt16BE(o.dport, 2);
  s.writeUInt32BE((o.seq ?? 0) >>> 0, 4);
  s.writeUInt32BE((o.ack ?? 0) >>> 0, 8);
  s[12] = 5 << 4;
  s[13] = o.flags ?? TCP_SYN;
  s.writeUInt16BE(o.window ?? 65535, 14);
  Buffer.from(payload).copy(s, 20);
  s.writeUInt16BE(inetChecksum(pseudoHeader(o.src, o.dst, IPPROTO_TCP, s.length), s), 16);
  return s;
}

// ---------------------------------------------------------------------------
// Whole frames for the common cases

export interface FrameAddrs {
  srcMac: string;
  dstMac: string;
  src: string;
  dst: string;
  ttl?: number;
  id?: number;
  tos?: number;
  /** Flags and fragment offset (default 0x4000: DF). */
  fragOff?: number;
  options?: Uint8Array;
}

function ipFrame(a: FrameAddrs, protocol: number, l4: Buffer): Buffer {
  const { srcMac, dstMac, src, dst, ...rest } = a;
  return ethernet({ dst: dstMac, src: srcMac, type: ETH_P_IP }, ipv4({ src, dst, protocol, ...rest }, l4));
}

/** Ethernet + IPv4 + ICMP echo request. */
export function icmpFrame(a: FrameAddrs, payload: Uint8Array = Buffer.from('ping'), o: IcmpEchoOpts = {}): Buffer {
  return ipFrame(a, IPPROTO_ICMP, icmpEcho({ id: 0x1234, seq: 1, ...o }, payload));
}

/** Ethernet + IPv4 + UDP. */
export function udpFrame(a: FrameAddrs, sport: number, dport: number, payload: Uint8Array = Buffer.from('udp payload')): Buffer {
  return ipFrame(a, IPPROTO_UDP, udp({ src: a.src, dst: a.dst, sport, dport }, payload));
}

/** Ethernet + IPv4 + TCP. */
export function tcpFrame(a: FrameAddrs, sport: number, dport: number, payload: Uint8Array = Buffer.alloc(0),
  o: Partial<Pick<TcpOpts, 'seq' | 'ack' | 'flags' | 'window'>> = {}): Buffer {
  return ipFrame(a, IPPROTO_TCP, tcp({ src: a.src, dst: a.dst, sport, dport, ...o }, payload));
}

/** Ethernet + IPv4 + an ICMP error quoting `quoted` (an IPv4 packet). */
export function icmpErrorFrame(a: FrameAddrs, o: IcmpErrorOpts, quoted: Uint8Array): Buffer {
  return ipFrame(a, IPPROTO_ICMP, icmpError(o, quoted));
}

export const VXLAN_HLEN = 8;
/** The I flag: the VNI is valid (RFC 7348); a VXLAN header's first byte. */
export const VXLAN_F_VNI = 0x08;

export interface VxlanOpts {
  /** 24 bits. */
  vni: number;
  /** The flags byte (default VXLAN_F_VNI). */
  flags?: number;
  /** The reserved byte after the VNI (default 0). */
  reserved?: number;
}

/** A VXLAN header followed by `inner` (an Ethernet frame): the payload of a UDP datagram. */
export function vxlan(o: VxlanOpts, inner: Uint8Array): Buffer {
  if (!Number.isInteger(o.vni) || o.vni < 0 || o.vni > 0xffffff) throw new RangeError(`VNI ${o.vni} does not fit in 24 bits`);
  const h = Buffer.alloc(VXLAN_HLEN);
  h[0] = o.flags ?? VXLAN_F_VNI;
  h.writeUIntBE(o.vni, 4, 3);
  h[7] = o.reserved ?? 0;
  return Buffer.concat([h, inner]);
}

export interface ArpFrameOpts {
  op?: number;
  /** Ethernet source; default `sha`. */
  srcMac?: string;
  /** Ethernet destination; default broadcast for a request, `tha` for a reply. */
  dstMac?: string;
  sha: string;
  sip: string;
  tha?: string;
  tip: string;
  /** Pad the frame to 60 bytes, as a NIC sends it (default false). */
  pad?: boolean;
}

/** Ethernet + ARP (default: a request). */
export function arpFrame(o: ArpFrameOpts): Buffer {
  const op = o.op ?? ARPOP_REQUEST;
  const dstMac = o.dstMac ?? (op === ARPOP_REQUEST ? BROADCAST_MAC : o.tha ?? BROADCAST_MAC);
  const body = arp({ op, sha: o.sha, sip: o.sip, tha: o.tha ?? ZERO_MAC, tip: o.tip });
  return ethernet({ dst: dstMac, src: o.srcMac ?? o.sha, type: ETH_P_ARP }, body, o.pad ? 60 : 0);
}

/** The first `len` bytes of `frame` (a copy). */
export function truncate(frame: Uint8Array, len: number): Buffer {
  return Buffer.from(frame.subarray(0, len));
}

// ---------------------------------------------------------------------------
// Parsers. Each throws a RangeError when its header does not fit.

export interface ParsedEthernet {
  dst: string;
  src: string;
  type: number;
  payload: Buffer;
}

export function parseEthernet(buf: Buffer): ParsedEthernet {
  if (buf.length < ETH_HLEN) throw new RangeError(`Ethernet frame of ${buf.length} bytes is shorter than ${ETH_HLEN}`);
  return { dst: macString(buf, 0), src: macString(buf, 6), type: buf.readUInt16BE(12), payload: buf.subarray(ETH_HLEN) };
}

export interface ParsedArp {
  hrd: number;
  pro: number;
  hln: number;
  pln: number;
  op: number;
  sha: string;
  sip: string;
  tha: string;
  tip: string;
}

export function parseArp(buf: Buffer): ParsedArp {
  if (buf.length < 28) throw new RangeError(`ARP packet of ${buf.length} bytes is shorter than 28`);
  return {
    hrd: buf.readUInt16BE(0), pro: buf.readUInt16BE(2), hln: buf[4]!, pln: buf[5]!, op: buf.readUInt16BE(6),
    sha: macString(buf, 8), sip: ipString(buf, 14), tha: macString(buf, 18), tip: ipString(buf, 24),
  };
}

export interface ParsedIpv4 {
  version: number;
  /** Header length in bytes. */
  headerLength: number;
  tos: number;
  totalLength: number;
  id: number;
  fragOff: number;
  ttl: number;
  protocol: number;
  checksum: number;
  /** The header checksum recomputed over the header with the checksum field zeroed. */
  expectedChecksum: number;
  /** checksum === expectedChecksum. */
  checksumValid: boolean;
  src: string;
  dst: string;
  options: Buffer;
  header: Buffer;
  /** The bytes after the header, up to totalLength (Ethernet padding excluded). */
  payload: Buffer;
}

export function parseIpv4(buf: Buffer): ParsedIpv4 {
  if (buf.length < 20) throw new RangeError(`IPv4 packet of ${buf.length} bytes is shorter than 20`);
  const headerLength = (buf[0]! & 0x0f) * 4;
  if (headerLength < 20 || headerLength > buf.length) throw new RangeError(`IPv4 header length ${headerLength} is invalid for ${buf.length} bytes`);
  const header = buf.subarray(0, headerLength);
  const zeroed = Buffer.from(header);
  zeroed.writeUInt16BE(0, 10);
  const checksum = buf.readUInt16BE(10);
  const expectedChecksum = inetChecksum(zeroed);
  const totalLength = buf.readUInt16BE(2);
  return {
    version: buf[0]! >> 4, headerLength, tos: buf[1]!, totalLength, id: buf.readUInt16BE(4), fragOff: buf.readUInt16BE(6),
    ttl: buf[8]!, protocol: buf[9]!, checksum, expectedChecksum, checksumValid: checksum === expectedChecksum,
    src: ipString(buf, 12), dst: ipString(buf, 16), options: buf.subarray(20, headerLength), header,
    payload: buf.subarray(headerLength, Math.max(headerLength, Math.min(totalLength, buf.length))),
  };
}

export interface ParsedL4 {
  protocol: number;
  /** TCP/UDP ports; 0 for ICMP. */
  sport: number;
  dport: number;
  /** ICMP type and code (undefined for TCP/UDP). */
  type?: number;
  code?: number;
  checksum: number;
  /** The checksum verifies (over the pseudo-header for TCP/UDP; a UDP checksum of 0 means none and counts as valid). */
  checksumValid: boolean;
  payload: Buffer;
}

/** Parses the ICMP, UDP or TCP header of an IPv4 packet. */
export function parseL4(ip: ParsedIpv4): ParsedL4 {
  const b = ip.payload;
  switch (ip.protocol) {
    case IPPROTO_ICMP:
      if (b.length < 8) throw new RangeError(`ICMP message of ${b.length} bytes is shorter than 8`);
      return { protocol: ip.protocol, sport: 0, dport: 0, type: b[0]!, code: b[1]!, checksum: b.readUInt16BE(2),
        checksumValid: onesSum(b) === 0xffff, payload: b.subarray(8) };
    case IPPROTO_UDP: {
      if (b.length < 8) throw new RangeError(`UDP datagram of ${b.length} bytes is shorter than 8`);
      const checksum = b.readUInt16BE(6);
      const valid = checksum === 0 || onesSum(pseudoHeader(ip.src, ip.dst, IPPROTO_UDP, b.length), b) === 0xffff;
      return { protocol: ip.protocol, sport: b.readUInt16BE(0), dport: b.readUInt16BE(2), checksum, checksumValid: valid, payload: b.subarray(8) };
    }
    case IPPROTO_TCP: {
      if (b.length < 20) throw new RangeError(`TCP segment of ${b.length} bytes is shorter than 20`);
      const doff = (b[12]! >> 4) * 4;
      return { protocol: ip.protocol, sport: b.readUInt16BE(0), dport: b.readUInt16BE(2), checksum: b.readUInt16BE(16),
        checksumValid: onesSum(pseudoHeader(ip.src, ip.dst, IPPROTO_TCP, b.length), b) === 0xffff, payload: b.subarray(doff) };
    }
    default:
      throw new Error(`no parser for IP protocol ${ip.protocol}`);
  }
}

export interface ParsedVxlan {
  flags: number;
  vni: number;
  reserved: number;
  /** The inner Ethernet frame. */
  inner: Buffer;
}

/** Parses a VXLAN header (a UDP datagram's payload). */
export function parseVxlan(buf: Buffer): ParsedVxlan {
  if (buf.length < VXLAN_HLEN) throw new RangeError(`VXLAN header of ${buf.length} bytes is shorter than ${VXLAN_HLEN}`);
  return { flags: buf[0]!, vni: buf.readUIntBE(4, 3), reserved: buf[7]!, inner: buf.subarray(VXLAN_HLEN) };
}

export interface ParsedFrame {
  eth: ParsedEthernet;
  arp?: ParsedArp;
  ipv4?: ParsedIpv4;
  l4?: ParsedL4;
}

/** Parses as far as this library knows: Ethernet, then ARP or IPv4, then ICMP/UDP/TCP. */
export function parseFrame(buf: Buffer): ParsedFrame {
  const eth = parseEthernet(buf);
  if (eth.type === ETH_P_ARP) return { eth, arp: parseArp(eth.payload) };
  if (eth.type !== ETH_P_IP) return { eth };
  const ip = parseIpv4(eth.payload);
  const known = ip.protocol === IPPROTO_ICMP || ip.protocol === IPPROTO_UDP || ip.protocol === IPPROTO_TCP;
  return { eth, ipv4: ip, ...(known && (ip.fragOff & 0x1fff) === 0 ? { l4: parseL4(ip) } : {}) };
}

/** Offsets of the header fields a router rewrites, within an Ethernet + IPv4 frame. */
export const OFF = { ethDst: 0, ethSrc: 6, ethType: 12, ipTtl: ETH_HLEN + 8, ipCheck: ETH_HLEN + 10 } as const;

/** Indexes where `a` and `b` differ (a length difference counts from the shorter one's end). */
export function diffBytes(a: Uint8Array, b: Uint8Array): number[] {
  const out: number[] = [];
  for (let i = 0; i < Math.max(a.length, b.length); i++) if (a[i] !== b[i]) out.push(i);
  return out;
}
