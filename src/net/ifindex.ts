/** A device's ifindex by name, in the network namespace of the calling thread (if_nametoindex(3)): 0 when there is no such device. */
import { libc } from '../sys/libc.js';

export function ifindexOf(device: string): number {
  return libc().if_nametoindex(device);
}
