/**
 * Making a map hold exactly the wanted entries by writing the difference: new and changed
 * entries first, stale ones last, so that a key the old and the new contents share, or a
 * prefix that moves from one entry to another, is never missing in between. Pure: the
 * caller reads the map into `have` and does the writes and deletes.
 */

export interface MapDiff<S> {
  added: S[];
  changed: S[];
  removed: S[];
}

export interface MapWriter<S, V> {
  write(key: S, value: V): void;
  remove(key: S, old: V): void;
}

/** Writes every entry of `want` that `have` lacks or holds differently (`same`), then removes what `want` lacks. */
export function applyMapDiff<S, V>(have: ReadonlyMap<S, V>, want: ReadonlyMap<S, V>, same: (a: V, b: V) => boolean,
  to: MapWriter<S, V>): MapDiff<S> {
  const out: MapDiff<S> = { added: [], changed: [], removed: [] };
  for (const [k, v] of want) {
    const h = have.get(k);
    if (h !== undefined && same(h, v)) continue;
    to.write(k, v);
    (h === undefined ? out.added : out.changed).push(k);
  }
  for (const [k, h] of have) {
    if (want.has(k)) continue;
    to.remove(k, h);
    out.removed.push(k);
  }
  return out;
}
