/**
 * An exclusive lock on a file with flock(2): held until released or until the process
 * dies, so a crashed holder never leaves a stale lock behind.
 */
import { constants } from 'node:os';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import { lastErrno } from '../sys/ffi.js';
import { libc as libcBinding } from '../sys/libc.js';

/** errno values from Node's own table, not copied by hand. */
const { EWOULDBLOCK, EINTR } = constants.errno;

const LOCK_EX = 2;
const LOCK_NB = 4;
const LOCK_UN = 8;

export interface FileLock {
  release(): void;
}

/** One non-blocking attempt: true when taken, false when someone else holds it. */
function tryFlock(fd: number, path: string): boolean {
  if ((libcBinding().flock(fd, LOCK_EX | LOCK_NB) as number) === 0) return true;
  const err = lastErrno();
  if (err !== EWOULDBLOCK && err !== EINTR) {
    closeSync(fd);
    throw new Error(`cannot lock ${path}: errno ${err}`);
  }
  return false;
}

function openLockFile(path: string): number {
  mkdirSync(dirname(path), { recursive: true });
  return openSync(path, 'a', 0o600);
}

function timedOut(fd: number, path: string, timeoutMs: number): Error {
  closeSync(fd);
  return new Error(`timed out after ${timeoutMs} ms waiting for the lock ${path} (another sluice command or the agent holds it)`);
}

/** Waits (polling, up to `timeoutMs`) for the lock on `path`. Blocks the thread while waiting. */
export function lockFile(path: string, timeoutMs = 30_000): FileLock {
  const fd = openLockFile(path);
  const deadline = Date.now() + timeoutMs;
  const sleeper = new Int32Array(new SharedArrayBuffer(4));
  while (!tryFlock(fd, path)) {
    if (Date.now() > deadline) throw timedOut(fd, path, timeoutMs);
    Atomics.wait(sleeper, 0, 0, 10);
  }
  return held(fd);
}

/** Like lockFile, but waits without blocking the event loop. */
export async function lockFileAsync(path: string, timeoutMs = 30_000): Promise<FileLock> {
  const fd = openLockFile(path);
  const deadline = Date.now() + timeoutMs;
  while (!tryFlock(fd, path)) {
    if (Date.now() > deadline) throw timedOut(fd, path, timeoutMs);
    await new Promise((r) => setTimeout(r, 5));
  }
  return held(fd);
}

/** The lock on `path` if nobody holds it, else undefined (never waits). */
export function tryLockFile(path: string): FileLock | undefined {
  const fd = openLockFile(path);
  if (tryFlock(fd, path)) return held(fd);
  closeSync(fd);
  return undefined;
}

function held(fd: number): FileLock {
  const libc = libcBinding();
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

export async function withLockAsync<T>(path: string, fn: () => Promise<T>): Promise<T> {
  const l = await lockFileAsync(path);
  try {
    return await fn();
  } finally {
    l.release();
  }
}
