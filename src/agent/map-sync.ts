/**
 * When a feature that keeps a pinned map equal to what it computes (sl_policy, sl_ipcache)
 * does the expensive part of a pass. Pure: the clock is injected.
 *
 *   apply   the fingerprint of the inputs differs from the one of the last pass that
 *           succeeded (or there was none): compute the wanted entries, read the map back,
 *           write the difference
 *   verify  same inputs, but the map may have drifted (edited behind the agent's back, e.g.
 *           with bpftool): read it back and repair it against the entries computed last
 *           time. When asked for (an explicit reconcile), when the map was replaced (another
 *           id) or its kernel memory use changed since the agent's last write (entries added
 *           or deleted; on kernels before 6.4 that memory does not follow the entries and
 *           only the next rule notices them), and when the last read-back is older than the
 *           drift-check interval
 *   skip    nothing: no compile, no map read, no write
 */
import type { SyncAction, SyncDecision } from '../api/types.js';
import type { MapState } from '../maps/map.js';

export type { MapState };

export type { SyncAction, SyncDecision };

interface Done<W> {
  fingerprint: string;
  /** What the map was made equal to: a verify repairs it against this. */
  want: W;
  map: MapState | undefined;
  /** When the map was last read back (apply or verify). */
  checkedAt: number;
}

/** `W`: what the feature makes the map equal to (its wanted entries). */
export class MapSync<W> {
  private last: Done<W> | undefined;

  /**
   * @param map the map's name, for reasons
   * @param driftCheckMs how old the last read-back may get before a pass reads the map back
   *        although nothing changed (0: every pass reads it back)
   */
  constructor(private readonly map: string, private readonly driftCheckMs: number, private readonly now: () => number = Date.now) {
    if (!(driftCheckMs >= 0)) throw new RangeError(`drift-check interval must be 0 or more milliseconds, not ${driftCheckMs}`);
  }

  /**
   * What this pass must do, given the fingerprint of its inputs, the map's state now
   * (undefined: could not be read) and whether a read-back was asked for.
   */
  decide(fingerprint: string, map: MapState | undefined, driftCheck: boolean): SyncDecision {
    const last = this.last;
    if (!last) return { action: 'apply', reason: 'no earlier pass succeeded' };
    if (fingerprint !== last.fingerprint) return { action: 'apply', reason: 'inputs changed' };
    if (driftCheck) return { action: 'verify', reason: 'drift check requested' };
    if (!map || !last.map) return { action: 'verify', reason: `the state of ${this.map} is unknown` };
    if (map.id !== last.map.id) return { action: 'verify', reason: `${this.map} was replaced (map id ${last.map.id}, now ${map.id})` };
    if (map.memlock !== last.map.memlock) {
      return { action: 'verify', reason: `${this.map} changed behind the agent's back (kernel memory ${last.map.memlock} bytes after the agent's last write, now ${map.memlock})` };
    }
    const age = this.now() - last.checkedAt;
    if (age >= this.driftCheckMs) return { action: 'verify', reason: `drift check (last read back ${Math.round(age / 1000)} s ago)` };
    return { action: 'skip', reason: 'inputs unchanged' };
  }

  /**
   * What the last pass that succeeded made the map equal to: defined whenever decide() says
   * verify (a verify only follows a pass that succeeded), undefined before one and after failed().
   */
  wanted(): W | undefined {
    return this.last?.want;
  }

  /**
   * After a pass that read the map back and made it equal to `want`, the entries computed
   * from the inputs of `fingerprint`; `map` is its state after the writes.
   */
  done(fingerprint: string, map: MapState | undefined, want: W): void {
    this.last = { fingerprint, want, map, checkedAt: this.now() };
  }

  /** After a pass that failed or left the map incomplete: the next one applies again. */
  failed(): void {
    this.last = undefined;
  }
}
