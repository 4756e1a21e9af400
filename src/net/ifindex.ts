/** A device's ifindex by name, in the network namespace of the calling thread (if_nametoindex(3)): 0 when there is no such device. */
import { c } from '../bpf/native.js';

export function ifindexOf(device: string): number {
  return c().if_nametoindex(device) as number;
}
