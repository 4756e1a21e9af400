/**
 * What the lease handles of both stores share: the keep-alive timer (every TTL/3, never
 * more than one keep-alive at a time), when the last keep-alive was acknowledged, the
 * onLost listeners, and release/revoke. A store's handle adds only its keep-alive (one
 * round trip: does the lease still exist?) and the message of a lease lost because no
 * keep-alive succeeded for a whole TTL.
 *
 * A lease is reported lost once: when a keep-alive finds it gone (expired, or revoked
 * by someone else), or when no keep-alive was acknowledged for a whole TTL. Either way
 * keep-alives stop; after release() or revoke() nothing is reported any more.
 */
import { StoreError, type Lease } from './types.js';

/** The store side of a lease handle. */
export interface LeaseStore {
  readonly description: string;
  /** Revokes the lease (its keys are deleted); done when it no longer exists. */
  revokeLease(id: number): Promise<void>;
  /** The handle no longer needs to be released at close. */
  forgetLease(h: LeaseHandle): void;
}

export abstract class LeaseHandle<S extends LeaseStore = LeaseStore> implements Lease {
  private timer: NodeJS.Timeout | undefined;
  private inFlight = false;
  private lastOk = Date.now();
  private readonly lostFns: ((err: Error) => void)[] = [];
  private lostErr: Error | undefined;

  constructor(protected readonly store: S, readonly id: number, readonly ttlSeconds: number) {
    this.timer = setInterval(() => this.tick(), Math.max(100, (ttlSeconds * 1000) / 3));
    this.timer.unref();
  }

  /**
   * One keep-alive: true when the store extended the lease, false when the lease no longer
   * exists. Throws (or rejects) when the store could not be asked.
   */
  protected abstract keepAlive(): boolean | Promise<boolean>;

  /** The error of a lease lost because no keep-alive succeeded for a whole TTL, the last failing with `e`. */
  protected abstract staleError(e: unknown): Error;

  private tick(): void {
    if (this.inFlight || !this.timer) return;
    let answer: boolean | Promise<boolean>;
    try {
      answer = this.keepAlive();
    } catch (e) {
      this.failed(e);
      return;
    }
    if (typeof answer === 'boolean') this.answered(answer);
    else void this.settle(answer);
  }

  private async settle(answer: Promise<boolean>): Promise<void> {
    this.inFlight = true;
    try {
      this.answered(await answer);
    } catch (e) {
      this.failed(e);
    } finally {
      this.inFlight = false;
    }
  }

  private answered(alive: boolean): void {
    if (!this.timer) return; // released while the keep-alive was under way
    if (alive) this.lastOk = Date.now();
    else this.lost(new StoreError(`${this.store.description}: lease ${this.id} was lost: it expired or was revoked`));
  }

  /** A failed keep-alive: the next tick tries again, until none succeeded for a whole TTL. */
  private failed(e: unknown): void {
    if (this.timer && Date.now() - this.lastOk >= this.ttlSeconds * 1000) this.lost(this.staleError(e));
  }

  private lost(err: Error): void {
    this.release();
    this.lostErr = err;
    for (const fn of this.lostFns) fn(err);
  }

  async revoke(): Promise<void> {
    this.release();
    await this.store.revokeLease(this.id);
  }

  release(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.store.forgetLease(this);
  }

  onLost(fn: (err: Error) => void): void {
    this.lostFns.push(fn);
    const err = this.lostErr;
    if (err) queueMicrotask(() => fn(err));
  }
}
