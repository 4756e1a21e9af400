/**
 * Connectivity matrices for policy end-to-end tests. Every participant (a pod, or a host
 * outside the cluster) runs one long-lived Node process in its network namespace that
 * answers on TCP and UDP ports with its own name, and on request probes a list of targets
 * concurrently. A probe succeeds only when the answer names the expected peer, so a packet
 * that reached the wrong pod is a failure, not a success.
 *
 * Processes are started with spawn, killed by PID at teardown, and exit on their own when
 * the test process goes away (stdin closes).
 */
import { spawn } from 'node:child_process';
import type { Teardown } from './env.js';
import { Server } from './traffic.js';

export type Proto = 'TCP' | 'UDP';

export interface Probe {
  /** Participant name expected to answer. */
  to: string;
  ip: string;
  protocol: Proto;
  port: number;
}

export interface Participant {
  name: string;
  /** Path of the network namespace (/run/netns/… or /proc/PID/ns/net). */
  netns: string;
  ip: string;
}

const PEER = `
const net = require('node:net'), dgram = require('node:dgram'), readline = require('node:readline');
const [name, host, portsJson] = process.argv.slice(1);
const ports = JSON.parse(portsJson);
const out = (o) => process.stdout.write(JSON.stringify(o) + '\\n');
let listening = 0;
const up = () => { if (++listening === ports.length * 2) out({ event: 'ready' }); };
for (const port of ports) {
  net.createServer((s) => { s.on('error', () => {}); s.end(name + '\\n'); }).listen(port, host, up);
  const u = dgram.createSocket('udp4');
  u.on('message', (m, r) => u.send(name, r.port, r.address));
  u.bind(port, host, up);
}
function probeTcp(p, ms) {
  return new Promise((res) => {
    let got = '';
    const s = net.connect({ host: p.ip, port: p.port });
    const done = (ok) => { clearTimeout(t); s.destroy(); res(ok); };
    const t = setTimeout(() => done(false), ms);
    s.on('data', (d) => { got += d; if (got.includes('\\n')) done(got.trim() === p.to); });
    s.on('error', () => done(false));
    s.on('end', () => done(got.trim() === p.to));
  });
}
function probeUdp(p, ms) {
  return new Promise((res) => {
    const s = dgram.createSocket('udp4');
    const done = (ok) => { clearTimeout(t); clearInterval(again); try { s.close(); } catch {} res(ok); };
    const t = setTimeout(() => done(false), ms);
    const send = () => s.send(name, p.port, p.ip, () => {});
    /* UDP has no retransmission of its own: one resend halfway, as a client would */
    const again = setInterval(send, ms / 2);
    s.on('message', (m) => { if (m.toString() === p.to) done(true); });
    s.on('error', () => done(false));
    send();
  });
}
readline.createInterface({ input: process.stdin }).on('line', async (line) => {
  const req = JSON.parse(line);
  const results = await Promise.all(req.probes.map((p) => (p.protocol === 'TCP' ? probeTcp : probeUdp)(p, req.timeoutMs)));
  out({ event: 'result', id: req.id, results });
});
`;

/** Prepended: exit when stdin ends, i.e. when the test process is gone. */
const EXIT_WITH_PARENT = `process.stdin.on('end', () => process.exit(0)); process.stdin.on('error', () => process.exit(0));`;

export class Peer {
  private nextId = 1;
  constructor(readonly who: Participant, private readonly server: Server) {}

  /** Runs every probe at once; true for each one answered by the expected peer within `timeoutMs`. */
  async probe(probes: readonly Probe[], timeoutMs: number): Promise<boolean[]> {
    const id = this.nextId++;
    const before = this.server.events.length;
    this.server.proc.stdin!.write(JSON.stringify({ id, probes, timeoutMs }) + '\n');
    let found: Record<string, unknown> | undefined;
    await this.server.waitFor(() => {
      found = this.server.events.slice(before).find((e) => e.event === 'result' && e.id === id);
      return found !== undefined;
    }, timeoutMs + 30_000, `probes from ${this.who.name}`);
    return found!.results as boolean[];
  }
}

/** Starts the answering-and-probing process of one participant, listening on its IP. */
export async function startPeer(t: Teardown, who: Participant, ports: readonly number[]): Promise<Peer> {
  const proc = spawn('nsenter', [`--net=${who.netns}`, process.execPath, '-e', EXIT_WITH_PARENT + PEER, who.name, who.ip, JSON.stringify(ports)], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const s = new Server(proc);
  t.teardown(() => s.stop());
  await s.waitFor(() => s.seen('ready').length > 0, 30_000, `${who.name} to listen`);
  return new Peer(who, s);
}

/** One cell of a matrix: "from -> to PROTO/port". */
export interface Cell {
  from: string;
  probe: Probe;
}

export const cellName = (c: Cell) => `${c.from} -> ${c.probe.to} ${c.probe.protocol}/${c.probe.port}`;

/** Every participant probes every other one on every (protocol, port). */
export function allCells(who: readonly Participant[], services: readonly { protocol: Proto; port: number }[]): Cell[] {
  const cells: Cell[] = [];
  for (const a of who)
    for (const b of who) if (a !== b) for (const s of services) cells.push({ from: a.name, probe: { to: b.name, ip: b.ip, ...s } });
  return cells;
}

/** Runs every cell (each source's probes concurrently, sources in parallel); the set of cells that connected. */
export async function measure(peers: ReadonlyMap<string, Peer>, cells: readonly Cell[], timeoutMs: number): Promise<Set<string>> {
  const bySource = new Map<string, Cell[]>();
  for (const c of cells) bySource.set(c.from, [...(bySource.get(c.from) ?? []), c]);
  const open = new Set<string>();
  await Promise.all(
    [...bySource].map(async ([from, cs]) => {
      const peer = peers.get(from);
      if (!peer) throw new Error(`no peer process for ${from}`);
      const ok = await peer.probe(cs.map((c) => c.probe), timeoutMs);
      cs.forEach((c, i) => ok[i] && open.add(cellName(c)));
    }),
  );
  return open;
}

/** Differences between an expected and a measured matrix, as readable lines. */
export function diff(cells: readonly Cell[], expected: ReadonlySet<string>, got: ReadonlySet<string>): string[] {
  const out: string[] = [];
  for (const c of cells) {
    const n = cellName(c);
    if (expected.has(n) && !got.has(n)) out.push(`${n}: expected allowed, was blocked`);
    if (!expected.has(n) && got.has(n)) out.push(`${n}: expected denied, connected`);
  }
  return out;
}
