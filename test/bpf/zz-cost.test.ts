import t from 'tap';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BpfObject, type LoadedObject } from '../../src/bpf/object.js';
import { testRun } from '../../src/bpf/testrun.js';
import { buildProgram } from '../../src/datapath/build.js';
import { pinRoot, uniquePrefix } from '../helpers/env.js';
import * as P from '../helpers/packets.js';

const B = { ip: '10.244.0.6', ifindex: 4242, id: 6, mac: '0a:58:0a:f4:00:06', host_mac: 'ee:ee:0a:f4:00:06', identity: 1006, flags: 0 };
const REMOTE_NODE = '198.18.0.2';
const MAC = '02:00:00:00:00:02';
const innerTo = (src = '10.244.1.7') => P.tcpFrame({ srcMac: '0a:58:0a:f4:01:07', dstMac: 'ee:ee:0a:f4:01:07', src, dst: B.ip, ttl: 63 }, 80, 40000, Buffer.from('reply'), { flags: P.TCP_ACK });
const vxlanIn = (src = REMOTE_NODE) => P.udpFrame({ srcMac: MAC, dstMac: P.ZERO_MAC, src, dst: '198.18.0.1' }, 51000, 8472, P.vxlan({ vni: 2001 }, innerTo()));
const direct = () => P.tcpFrame({ srcMac: MAC, dstMac: P.ZERO_MAC, src: '10.244.1.7', dst: B.ip, ttl: 63 }, 80, 40000, Buffer.from('reply'), { flags: P.TCP_ACK });

function setup(o: LoadedObject, flags: number, nodes: boolean, mac: boolean) {
  o.map<{ ip: string }, object>('sl_endpoints').update({ ip: B.ip }, { ifindex: B.ifindex, id: B.id, mac: B.mac, host_mac: B.host_mac, identity: B.identity, flags: 0 });
  o.map<{ prefixlen: number; ip: string }, object>('sl_ipcache').update({ prefixlen: 24, ip: '10.244.1.0' }, { identity: 0, tunnel_endpoint: REMOTE_NODE, flags });
  o.map<number, object>('sl_node').update(0, { vxlan_ifindex: 7001, uplink_ifindex: 7002, underlay_ip: '198.18.0.1', flags: 0 });
  if (nodes) o.map<{ ip: string }, object>('sl_nodes').update({ ip: REMOTE_NODE }, { mac: mac ? MAC : '00:00:00:00:00:00', flags: mac ? 1 : 0 });
}
const N = 20000;
function cost(o: LoadedObject, frame: Buffer): { ns: number; ret: number } {
  const p = o.program('from_netdev');
  let sum = 0; let ret = -1;
  for (let i = 0; i < 2000; i++) testRun(p, { data: frame });
  for (let i = 0; i < N; i++) { const r = testRun(p, { data: frame }); sum += r.durationNs; ret = r.retval; }
  return { ns: Math.round(sum / N), ret };
}

t.test('cost', async (tt) => {
  const out: string[] = [];
  for (let round = 0; round < 3; round++) {
    for (const which of ['old', 'new'] as const) {
      const root = pinRoot(tt, uniquePrefix('zc'));
      const cacheDir = mkdtempSync(join(tmpdir(), 'zc-'));
      const src = which === 'old' ? { srcDir: '/tmp/sl/old/bpf', includeDir: '/tmp/sl/old/include' } : {};
      const obj = BpfObject.open(buildProgram('from_netdev', { cacheDir, ...src }).object, { pinRoot: root });
      obj.setGlobals({ sl_vxlan_port: 8472 });
      const o = obj.load();
      setup(o, 1, which === 'new', true);
      const vx = cost(o, vxlanIn());
      const vxs = cost(o, vxlanIn('198.18.0.66'));
      setup(o, 2, which === 'new', true);
      const dm = cost(o, direct());
      setup(o, 2, which === 'new', false);
      const dn = cost(o, direct());
      out.push(`${round} ${which}: vxlan delivered ${vx.ns} ns (ret ${vx.ret}), vxlan from stranger ${vxs.ns} (ret ${vxs.ret}), direct MAC checked ${dm.ns} (ret ${dm.ret}), direct unchecked ${dn.ns} (ret ${dn.ret})`);
      obj.close();
    }
  }
  console.log(out.join('\n'));
  tt.pass();
});
