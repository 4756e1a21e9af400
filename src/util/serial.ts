/**
 * A queue of async jobs that run one at a time, in call order, within this process. A
 * failed job fails its own caller only; the next job runs anyway.
 */
export class Serial {
  private tail: Promise<unknown> = Promise.resolve();

  /** Runs `fn` once every job queued before it has settled. */
  run<T>(fn: () => Promise<T>): Promise<T> {
    const job = this.tail.then(fn);
    this.tail = job.catch(() => undefined);
    return job;
  }

  /** Settles once every job queued so far has settled. */
  async idle(): Promise<void> {
    await this.tail;
  }
}
