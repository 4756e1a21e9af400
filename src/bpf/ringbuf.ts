/**
 * Reading a BPF ring buffer (BPF_MAP_TYPE_RINGBUF) through libbpf's ring_buffer API.
 * Records are copied out inside libbpf's callback (the memory is valid only there) and
 * handed to `onRecord`. Nothing blocks: `consume()` takes what is there and returns, and
 * `start()` calls it on a timer, so the event loop never waits on the kernel.
 */
import { BpfError } from './errors.js';
import { closeFd, objGet } from './fd.js';
import { copyOut, isNull, koffi, lastErrno, type Ptr } from '../sys/ffi.js';
import { libbpf, ringSampleProto } from './native.js';

export class RingBufferReader {
  private rb: Ptr | undefined;
  private readonly callback: unknown;
  private timer: NodeJS.Timeout | undefined;
  private failure: Error | undefined;

  private constructor(private readonly fd: number, private readonly owned: boolean, readonly path: string, onRecord: (record: Buffer) => void) {
    const lib = libbpf();
    this.callback = koffi.register((_ctx: Ptr, data: Ptr, size: number | bigint): number => {
      try {
        onRecord(copyOut(data, Number(size)));
        return 0;
      } catch (e) {
        this.failure = e as Error;
        return -1; // stops this consume(); the error is thrown from it
      }
    }, koffi.pointer(ringSampleProto!));
    const rb = lib.ring_buffer__new(fd, this.callback, null, null) as Ptr;
    if (isNull(rb)) {
      const errno = lastErrno();
      koffi.unregister(this.callback as never);
      throw new BpfError(`open ring buffer ${path}`, errno || 22);
    }
    this.rb = rb;
  }

  /** Opens the ring buffer pinned at `path`. */
  static openPinned(path: string, onRecord: (record: Buffer) => void): RingBufferReader {
    const fd = objGet(path, 'map');
    try {
      return new RingBufferReader(fd, true, path, onRecord);
    } catch (e) {
      closeFd(fd);
      throw e;
    }
  }

  /** Hands every record now in the buffer to onRecord; returns how many. */
  consume(): number {
    if (this.rb === undefined) throw new Error(`ring buffer ${this.path} is closed`);
    const n = libbpf().ring_buffer__consume(this.rb) as number;
    if (this.failure) {
      const f = this.failure;
      this.failure = undefined;
      throw f;
    }
    if (n < 0) throw new BpfError(`read ring buffer ${this.path}`, -n);
    return n;
  }

  /** Consumes every `intervalMs` until close(); errors go to onError (reading goes on). */
  start(intervalMs: number, onError: (e: Error) => void): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      try {
        this.consume();
      } catch (e) {
        onError(e as Error);
      }
    }, intervalMs);
    this.timer.unref();
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (this.rb !== undefined) {
      libbpf().ring_buffer__free(this.rb);
      this.rb = undefined;
      koffi.unregister(this.callback as never);
      if (this.owned) closeFd(this.fd);
    }
  }
}
