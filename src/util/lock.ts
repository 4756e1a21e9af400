/**
 * An exclusive lock on a file with flock(2): held until released or until the process
 * dies, so a crashed holder never leaves a stale lock behind.
 */
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import { c, lastErrno } from '../bpf/native.js';

const LOCK_EX = 2;
const LOCK_NB = 4;
const LOCK_UN = 8;
const EWOULDBLOCK = 11;
const EINTR = 4;

export interface FileLock {
  release(): void;
}

/** Waits (polling, up to `timeoutMs`) for the lock on `path`. */
export function lockFile(path: string, timeoutMs = 30_000): FileLock {
  mkdirSync(dirname(path), { recursive: true });
  const fd = openSync(path, 'a', 0o600);
  const libc = c();
  const deadline = Date.now() + timeoutMs;
  const sleeper = new Int32Array(new SharedArrayBuffer(4));
  for (;;) {
    if ((libc.flock(fd, LOCK_EX | LOCK_NB) as number) === 0) break;
    const err = lastErrno();
    if (err !== EWOULDBLOCK && err !== EINTR) {
      closeSync(fd);
      throw new Error(`cannot lock ${path}: errno ${err}`);
    }
    if (Date.now() > deadline) {
      closeSync(fd);
      throw new Error(`timed out after ${timeoutMs} ms waiting for the lock ${path} (another sluice command is running)`);
    }
    Atomics.wait(sleeper, 0, 0, 10);
  }
  let held = true;
  return {
    release() {
      if (!held) return;
      held = false;
      libc.flock(fd, LOCK_UN);
      closeSync(fd);
    },
  };
}

export function withLock<T>(path: string, fn: () => T): T {
  const l = lockFile(path);
  try {
    return fn();
  } finally {
    l.release();
  }
}
