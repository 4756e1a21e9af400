/**
 * The parse cache of the file store: the last store.json a FileStore instance parsed or
 * wrote, with the identity of the file it came from, reused while the file is the same.
 *
 * Identity: (dev, ino, size, mtimeNs) from fstat(2) of the opened file (so it belongs to
 * the bytes read, even if the path is replaced meanwhile), and the random stamp every
 * write puts in the first bytes (src/store/file-doc.ts), read back with one pread. Writers
 * replace store.json by rename, so a changed file is a new inode; the stamp covers an
 * inode number reused by a later write of the same size within one timestamp tick (file
 * times are coarse, ~4 ms). Files without a stamp (older writers, hand-made) are not
 * cached: they are parsed at every read, as before.
 *
 * The cached DocView is shared: nobody may change it (its type is read-only; changes go
 * through a copy, Changes in file.ts).
 */
import { closeSync, fstatSync, openSync, readFileSync, readSync, statSync, type BigIntStats } from 'node:fs';
import { emptyDoc, parseDoc, STAMP_PREFIX_BYTES, stampOf, type DocView } from './file-doc.js';

interface FileId {
  dev: bigint;
  ino: bigint;
  size: bigint;
  mtimeNs: bigint;
}

const idOf = (st: BigIntStats): FileId => ({ dev: st.dev, ino: st.ino, size: st.size, mtimeNs: st.mtimeNs });
const sameId = (a: FileId, b: FileId): boolean => a.dev === b.dev && a.ino === b.ino && a.size === b.size && a.mtimeNs === b.mtimeNs;

/** store.json could be read but not parsed: `cause` says why. */
export class CorruptFileError extends Error {}

export class DocCache {
  private entry: { id: FileId; stamp: string; doc: DocView } | undefined;
  /** store.json parses so far (for tests and measurements). */
  parses = 0;
  /** Reads answered from the cache so far. */
  hits = 0;

  constructor(readonly file: string) {}

  /**
   * store.json as it is now (an empty store if it does not exist). Throws the fs error
   * when it cannot be read, CorruptFileError when it cannot be parsed.
   */
  read(): DocView {
    let fd: number;
    try {
      fd = openSync(this.file, 'r');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      this.entry = undefined;
      return emptyDoc();
    }
    try {
      const id = idOf(fstatSync(fd, { bigint: true }));
      const cached = this.entry;
      if (cached && sameId(cached.id, id) && this.headStamp(fd) === cached.stamp) {
        this.hits++;
        return cached.doc;
      }
      this.entry = undefined;
      const text = readFileSync(fd, 'utf8');
      let doc: DocView;
      try {
        this.parses++;
        doc = parseDoc(text);
      } catch (e) {
        throw new CorruptFileError((e as Error).message, { cause: e });
      }
      const stamp = stampOf(text.slice(0, STAMP_PREFIX_BYTES));
      if (stamp !== undefined) this.entry = { id, stamp, doc };
      return doc;
    } finally {
      closeSync(fd);
    }
  }

  /**
   * Remembers `doc` as the content of store.json just written with `stamp`. Call under
   * the store lock, right after the rename, so the file stat'ed is the one written.
   */
  wrote(doc: DocView, stamp: string): void {
    try {
      this.entry = { id: idOf(statSync(this.file, { bigint: true })), stamp, doc };
    } catch {
      this.entry = undefined;
    }
  }

  /** Drops the cached document (after a failed write: the file is unknown). */
  forget(): void {
    this.entry = undefined;
  }

  private headStamp(fd: number): string | undefined {
    const buf = Buffer.alloc(STAMP_PREFIX_BYTES);
    const n = readSync(fd, buf, 0, buf.length, 0);
    return stampOf(buf.toString('latin1', 0, n));
  }
}
