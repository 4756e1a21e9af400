/**
 * What `sluice prefilter add|del|list` do, whoever runs them: the agent (its API routes)
 * or the CLI itself when no agent runs. Every CIDR is validated before anything changes;
 * the store gets all of a request or none of it; then this node's sl_prefilter is made
 * equal to the store (other nodes' agents follow through their store watch).
 */
import type { Config } from '../config/config.js';
import type { Store } from '../store/types.js';
import { xdpAttachment, type XdpAttachment } from './attach.js';
import { parseDenyCidrs, type PrefilterEntry } from './cidr.js';
import { readPrefilterRules } from '../maps/prefilter.js';
import { readPrefilterCounters } from '../maps/prefilter-counters.js';
import { prefilterMapsPinned, syncRules } from './datapath.js';
import { addEntries, deleteEntries, listEntries, type AddResult, type DelResult } from './store.js';

export interface PrefilterRow extends PrefilterEntry {
  /** Packets and bytes this rule dropped on this node, summed over CPUs. */
  packets: number;
  bytes: number;
  /** Whether this node's sl_prefilter holds the rule (false until the agent catches up). */
  active: boolean;
}

export interface PrefilterList {
  node: string;
  /** The uplink the prefilter runs on (null: the node has none). */
  uplink: string | null;
  /** The XDP attachment on the uplink, or null when the program is not attached. */
  attachment: Omit<XdpAttachment, 'linkPin'> | null;
  entries: PrefilterRow[];
}

export interface PrefilterAddResult extends AddResult {
  /** Whether this node's map was updated (false: the datapath is not loaded here). */
  applied: boolean;
}

export interface PrefilterDelResult extends DelResult {
  applied: boolean;
}

/** Makes this node's sl_prefilter equal to the store; false when the maps are not pinned. */
export async function applyToNode(cfg: Pick<Config, 'pinRoot'>, store: Store): Promise<boolean> {
  if (!prefilterMapsPinned(cfg)) return false;
  syncRules(cfg, await listEntries(store));
  return true;
}

export async function prefilterAdd(cfg: Config, store: Store, cidrs: unknown, apply = applyToNode): Promise<PrefilterAddResult> {
  const list = parseDenyCidrs(cidrs);
  const r = await addEntries(store, list);
  return { ...r, applied: await apply(cfg, store) };
}

export async function prefilterDel(cfg: Config, store: Store, cidrs: unknown, apply = applyToNode): Promise<PrefilterDelResult> {
  const list = parseDenyCidrs(cidrs);
  const r = await deleteEntries(store, list);
  return { ...r, applied: await apply(cfg, store) };
}

export async function prefilterList(cfg: Config, store: Store, uplink: string | undefined): Promise<PrefilterList> {
  const entries = await listEntries(store);
  const pinned = prefilterMapsPinned(cfg);
  const counters = pinned ? readPrefilterCounters(cfg) : new Map<number, { packets: number; bytes: number }>();
  const rules = pinned ? readPrefilterRules(cfg) : new Map<string, { id: number }>();
  let attachment: XdpAttachment | undefined;
  if (uplink) {
    try {
      attachment = xdpAttachment(cfg, uplink);
    } catch {
      attachment = undefined;
    }
  }
  return {
    node: cfg.nodeName,
    uplink: uplink ?? null,
    attachment: attachment
      ? { device: attachment.device, ifindex: attachment.ifindex, mode: attachment.mode, programId: attachment.programId }
      : null,
    entries: entries.map((e) => ({
      ...e,
      packets: counters.get(e.id)?.packets ?? 0,
      bytes: counters.get(e.id)?.bytes ?? 0,
      active: rules.get(e.cidr)?.id === e.id,
    })),
  };
}
