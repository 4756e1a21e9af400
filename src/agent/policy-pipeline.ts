/**
 * What the identities, publish and policy features hand each other within one
 * reconciliation. They run in that order (features.ts makes one pipeline for the three):
 *   1. identities  each ready local endpoint gets the identity of (namespace, labels);
 *   2. publish     the node's endpoints go to the store, whose endpoint records it hands on;
 *   3. policy      compiles from them (and the rest of the store) into sl_policy, then
 *                  collects dead conntrack entries.
 * A step that fails stops the steps after it until the next pass.
 */
export class PolicyPipeline {
  /** The step of this pass that failed. */
  private failed: string | undefined;
  /** The store's endpoint records (ENDPOINTS) as this pass's publish left them. */
  private published: Map<string, string> | undefined;

  /** The first step starts a pass. */
  begin(): void {
    this.failed = undefined;
    this.published = undefined;
  }

  /** Runs step `name` unless an earlier step of this pass failed (undefined then). */
  async step<T>(name: string, fn: () => Promise<T>): Promise<T | undefined> {
    if (this.failed !== undefined) return undefined;
    try {
      return await fn();
    } catch (e) {
      this.failed = name;
      throw e;
    }
  }

  /** Publish: every node's endpoint records, by store key, after its writes. */
  handOver(endpoints: Map<string, string>): void {
    this.published = endpoints;
  }

  /** Policy: the records publish handed over in this pass (undefined: read them yourself). */
  takeEndpoints(): Map<string, string> | undefined {
    const e = this.published;
    this.published = undefined;
    return e;
  }
}
