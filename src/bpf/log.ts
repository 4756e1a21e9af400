/**
 * libbpf's diagnostics. libbpf prints through one process-wide callback; we install
 * ours once, keep the messages of the operation in progress (so a failed load can
 * quote them) and forward them to stderr when SLUICE_LIBBPF_DEBUG is set.
 */
import { BpfError } from './errors.js';
import { koffi, type Ptr } from '../sys/ffi.js';
import { libc as libcBinding } from '../sys/libc.js';
import { libbpf, printProto } from './native.js';

export enum PrintLevel { Warn = 0, Info = 1, Debug = 2 }
export interface LibbpfMessage { level: PrintLevel; text: string }

let installed = false;
let capture: LibbpfMessage[] | undefined;
// Retained so the callback is never garbage-collected while libbpf holds it.
let registered: unknown;

/** x86-64 va_list is one 24-byte struct passed by pointer; a byte copy is a valid va_copy. */
const VA_LIST_SIZE = 24;

function format(fmt: Ptr, ap: Ptr): string {
  const libc = libcBinding();
  if (process.arch === 'x64') {
    const copy = Buffer.alloc(VA_LIST_SIZE);
    libc.memcpy(copy, ap, VA_LIST_SIZE);
    const n = libc.vsnprintf(null, 0, fmt, copy) as number;
    if (n < 0) return '';
    const buf = Buffer.alloc(n + 1);
    libc.vsnprintf(buf, n + 1, fmt, ap);
    return buf.toString('utf8', 0, n);
  }
  const buf = Buffer.alloc(1 << 20);
  const n = libc.vsnprintf(buf, buf.length, fmt, ap) as number;
  return buf.toString('utf8', 0, Math.max(0, Math.min(n, buf.length - 1)));
}

export function installPrint(): void {
  if (installed) return;
  const lib = libbpf();
  const debug = Boolean(process.env.SLUICE_LIBBPF_DEBUG);
  registered = koffi.register((level: number, fmt: Ptr, ap: Ptr): number => {
    if (level === PrintLevel.Debug && !debug && !capture) return 0;
    const text = format(fmt, ap);
    capture?.push({ level, text });
    if (debug) process.stderr.write(`libbpf: ${text}`);
    return 0;
  }, koffi.pointer(printProto!));
  lib.libbpf_set_print(registered);
  installed = true;
}

/** Runs `fn` and returns what libbpf printed during it alongside its result or error. */
export function withLibbpfLog<T>(fn: () => T): { result?: T; error?: unknown; messages: LibbpfMessage[] } {
  installPrint();
  const outer = capture;
  const messages: LibbpfMessage[] = [];
  capture = messages;
  try {
    return { result: fn(), messages };
  } catch (error) {
    return { error, messages };
  } finally {
    capture = outer;
    outer?.push(...messages);
  }
}

/** The warnings among `messages`, one line each, for error details. */
export function warnings(messages: LibbpfMessage[], max = 8): string {
  return messages
    .filter((m) => m.level === PrintLevel.Warn && !m.text.includes('BEGIN PROG LOAD LOG'))
    .map((m) => m.text.trimEnd())
    .slice(-max)
    .join('\n');
}

/**
 * Calls a libbpf function that returns 0 or a negative errno; on failure throws a
 * BpfError naming `op` and quoting what libbpf and the kernel (extack) said.
 */
export function callChecked(op: string, fn: () => number, tolerate: readonly number[] = []): number {
  const { result, error, messages } = withLibbpfLog(fn);
  if (error) throw error;
  const ret = result ?? 0;
  if (ret < 0 && !tolerate.includes(-ret)) throw new BpfError(op, -ret, warnings(messages) || undefined);
  return ret;
}
