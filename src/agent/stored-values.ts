/** The values under a store prefix, by key, as the agent's features read their inputs. */
import type { Store } from '../store/types.js';

export async function storedValues(store: Store, prefix: string): Promise<Map<string, string>> {
  return new Map((await store.list(prefix)).map((kv) => [kv.key, kv.value]));
}
