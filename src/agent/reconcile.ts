/**
 * One reconciliation of a node: makes the datapath (sl_endpoints, attached programs),
 * the devices and the store's address records agree with the endpoint records, which
 * are the node's intent. Runs under the node lock, so it never races an add or a delete.
 *
 *   record 'creating' / 'deleting'          interrupted add or delete: torn down
 *   record 'ready', pod gone                netns or veth vanished: torn down (address freed)
 *   record 'ready'                          map entry rewritten if it differs, programs re-attached
 *                                           if their link is missing, address re-claimed if lost
 *   map entry without a ready record        deleted
 *   address in our blocks, no record        released
 *   sluice veth or link pin, no record      deleted
 */
import { existsSync, readdirSync } from 'node:fs';
import { unpin } from '../sys/bpffs.js';
import { linked, linkPin } from '../datapath/attach.js';
import { attachmentsOf } from '../datapath/attachments.js';
import { nodePins } from '../datapath/pins.js';
import { attachEndpoint, endpointValue } from '../endpoint/datapath.js';
import { podGone } from '../endpoint/manager.js';
import { HOST_IF_PATTERN } from '../endpoint/veth.js';
import { deleteEndpoint, readEndpoints, writeEndpoint, type EndpointValue } from '../maps/endpoints.js';
import { deleteLink, listLinks } from '../net/ip.js';
import type { NodeHandle } from '../node/context.js';
import type { ReconcileReport } from '../api/types.js';

export type { ReconcileReport };

/** A report of a pass that looked at no endpoint (only the features ran). */
export function emptyReport(): ReconcileReport {
  return {
    finished: [], collected: [], repairedEntries: [], reattached: [], reclaimed: [], staleEntries: [], releasedHandles: [],
    strays: [], problems: [], endpoints: 0, durationMs: 0, features: {},
  };
}

export async function reconcile(node: NodeHandle): Promise<ReconcileReport> {
  const started = performance.now();
  const { cfg, manager, pool } = node;
  const r = emptyReport();
  const attempt = async (what: string, fn: () => unknown) => {
    try {
      await fn();
    } catch (e) {
      r.problems.push(`${what}: ${(e as Error).message}`);
    }
  };
  await manager.state.lockedAsync(async () => {
    const pins = nodePins(cfg);
    const podPrograms = attachmentsOf({ role: 'pod' }).map((a) => a.program);
    const links = new Map(listLinks().map((l) => [l.name, l]));
    for (const ep of manager.list()) {
      if (ep.state !== 'ready' || podGone(ep, links)) {
        const list = ep.state === 'ready' ? r.collected : r.finished;
        const problems = await manager.teardown(ep);
        if (problems.length) r.problems.push(...problems.map((p) => `${ep.name}: ${p}`));
        else list.push(ep.name);
      }
    }
    const ready = manager.list().filter((e) => e.state === 'ready');
    r.endpoints = ready.length;

    let entries = new Map<string, EndpointValue>();
    await attempt('reading sl_endpoints', () => {
      entries = readEndpoints(cfg);
    });
    for (const ep of ready) {
      const want = endpointValue(ep);
      const have = entries.get(ep.ip);
      if (!have || JSON.stringify(have) !== JSON.stringify(want)) {
        await attempt(`${ep.name}: map entry`, () => writeEndpoint(cfg, ep.ip, want));
        r.repairedEntries.push(ep.name);
      }
      // A pinned link can be detached (bpftool link detach) and stay pinned: check the link.
      if (podPrograms.some((p) => !linked(cfg, 'pod', ep.hostIfname, p))) {
        await attempt(`${ep.name}: programs`, () => attachEndpoint(cfg, ep));
        r.reattached.push(ep.name);
      }
      await attempt(`${ep.name}: address`, async () => {
        const held = await pool.lookup(ep.handle);
        if (held?.ip === ep.ip) return;
        if (held) throw new Error(`the store says ${ep.handle} holds ${held.ip}, the endpoint has ${ep.ip}`);
        await pool.allocate(ep.handle, ep.ip);
        r.reclaimed.push(`${ep.name} ${ep.ip}`);
      });
    }
    const readyIps = new Set(ready.map((e) => e.ip));
    for (const ip of entries.keys()) {
      if (readyIps.has(ip)) continue;
      await attempt(`stale map entry ${ip}`, () => deleteEndpoint(cfg, ip));
      r.staleEntries.push(ip);
    }

    const handles = new Set(manager.list().map((e) => e.handle));
    await attempt('addresses', async () => {
      for (const a of await pool.allocations()) {
        if (handles.has(a.handle)) continue;
        await pool.release(a.handle);
        r.releasedHandles.push(`${a.handle} ${a.ip}`);
      }
    });

    const devices = new Set(manager.list().map((e) => e.hostIfname));
    for (const l of listLinks()) {
      if (l.kind !== 'veth' || !HOST_IF_PATTERN.test(l.name) || devices.has(l.name)) continue;
      await attempt(`stray device ${l.name}`, () => deleteLink(l.name));
      r.strays.push(l.name);
    }
    if (existsSync(pins.links)) {
      const linkNames = new Set([...devices].flatMap((d) => podPrograms.map((p) => linkPin(cfg, 'pod', d, p))));
      for (const f of readdirSync(pins.links)) {
        const path = `${pins.links}/${f}`;
        // Only pod veths' links are the endpoints' business (the node's devices have their own).
        if (linkNames.has(path) || f.endsWith('__new') || !HOST_IF_PATTERN.test(f.replace(/-(ingress|egress)$/, ''))) continue;
        await attempt(`stray link pin ${f}`, () => unpin(path));
        r.strays.push(`links/${f}`);
      }
    }
  });
  r.durationMs = performance.now() - started;
  return r;
}
