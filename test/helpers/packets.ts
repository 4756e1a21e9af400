/** The packet-crafting library, kept in src/ because the benchmarks use it too. */
export * from '../../src/net/packets.js';
