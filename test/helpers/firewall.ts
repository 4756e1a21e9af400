/** The firewall state of a namespace, to show that sluice never adds an iptables or nftables rule. */
import { inNetns, sh } from './env.js';

/** Firewall state of a namespace (null: the test's own namespace; a name under /run/netns; or a path), without comments and counters. */
export function firewall(ns: string | null): { iptables: string; nft: string } {
  const run = (cmd: string, args: string[]) => {
    const r = ns === null ? sh(cmd, args) : ns.startsWith('/') ? sh('nsenter', [`--net=${ns}`, cmd, ...args]) : inNetns(ns, cmd, args);
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}${ns ? ` in ${ns}` : ''} failed: ${r.stderr}`);
    return r.stdout;
  };
  const iptables = run('iptables-save', []).split('\n').filter((l) => !l.startsWith('#')).map((l) => l.replace(/\[\d+:\d+\]/g, '[0:0]')).join('\n');
  const nft = run('nft', ['list', 'ruleset']).replace(/counter packets \d+ bytes \d+/g, 'counter');
  return { iptables, nft };
}

