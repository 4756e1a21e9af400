/**
 * The Vagrant cluster, tested as far as this machine allows:
 *  - `vagrant validate` on the Vagrantfile (provider settings ignored: no VirtualBox or
 *    libvirt here; it still checks every provisioning script exists);
 *  - the provisioning scripts (scripts/provision/node and demo) run against a lab node: a
 *    lab (etcd store) is the cluster, a fresh node namespace on its underlay plays a new
 *    VM. The scripts write the node config, run `sluice node install` with every path in a
 *    temp dir (--no-systemctl), start the agent, add demo pods and a policy; the new node
 *    then reaches the lab's pod across VXLAN and the policy holds.
 * Nothing touches the root namespace: the new node is a namespace bridged into the lab's
 * underlay namespace; everything is removed at teardown.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { issueCert } from '../../src/lab/certs.js';
import { canRunCliE2e, REPO, SLUICE_BIN, mustSh, sh, tempDir, uniquePrefix } from '../helpers/env.js';
import { inNs, labUp } from '../helpers/lab.js';

const PROVISION = join(REPO, 'scripts', 'provision');
const SLUICE_CMD = `${process.execPath} ${SLUICE_BIN}`;

const HAS_VAGRANT = spawnSync('sh', ['-c', 'command -v vagrant'], { encoding: 'utf8' }).status === 0;

t.test('vagrant validate accepts the Vagrantfile', {
  skip: HAS_VAGRANT ? false : 'vagrant is not installed (scripts/setup installs Debian\'s vagrant package)',
}, async (t) => {
  const home = tempDir(t, 'slt-vagrant-home');
  const r = spawnSync('vagrant', ['validate', '--ignore-provider'], { cwd: REPO, encoding: 'utf8', env: { ...process.env, VAGRANT_HOME: home, VAGRANT_DOTFILE_PATH: join(home, 'dot') }, timeout: 120_000 });
  t.equal(r.status, 0, 'validates', { stdout: r.stdout, stderr: r.stderr });
  t.match(r.stdout, /Vagrantfile validated successfully/);
  for (const n of ['node1', 'node2', 'node3']) t.match(r.stdout, new RegExp(`${n}: Ignoring provider config`), `defines ${n}`);
});

if (canRunCliE2e(t)) {
  t.test('provisioning scripts install a node into a lab cluster, start demo pods and a policy', async (t) => {
    const lab = uniquePrefix('pv');
    const { status } = labUp(t, lab, ['--nodes', '1', '--pods-per-node', '1', '--store', 'etcd', '--mode', 'vxlan']);
    const target = status.pods[0]!;
    const underlay = status.underlay.netns;
    const etcd = status.storeSpec;
    t.match(etcd, /^etcds:\/\//, 'the lab runs etcd, over TLS');

    // A new "VM": a namespace with an uplink on the lab's underlay bridge (.9 in subnet s1).
    const vm = `${lab}-vm`;
    const vmNs = `/run/netns/${vm}`;
    const dir = tempDir(t, 'slt-provision');
    const cfg = {
      configFile: join(dir, 'config.yaml'), runDir: join(dir, 'run'), stateDir: join(dir, 'state'),
      pinRoot: `/sys/fs/bpf/${lab}-vm`, bin: join(dir, 'opt-cni-bin'), conf: join(dir, 'etc-cni-net.d'), systemd: join(dir, 'systemd'),
    };
    // The new node's client certificate, signed by the lab's CA as an operator would sign it.
    const labTls = status.underlay.etcd!.tls;
    const labCA = { cert: labTls.ca, key: join(dirname(labTls.ca), 'ca-key.pem'), dir: join(dirname(labTls.ca), '.ca') };
    const nodeCert = issueCert(labCA, join(dir, 'tls'), 'pv1', { cn: 'node.pv1', usage: 'client' });
    const pods = [`${lab}-p1`, `${lab}-p2`];
    t.teardown(() => {
      const pid = join(cfg.runDir, 'agent.pid');
      if (existsSync(pid)) {
        const p = Number(readFileSync(pid, 'utf8'));
        try { process.kill(p, 'SIGTERM'); } catch { /* gone */ }
        for (let i = 0; i < 50 && alive(p); i++) spawnSync('sleep', ['0.1']);
      }
      if (existsSync(vmNs)) sh('nsenter', [`--net=${vmNs}`, process.execPath, SLUICE_BIN, '--config', cfg.configFile, 'node', 'reset']);
      sh('rm', ['-rf', cfg.pinRoot]);
      for (const p of pods) sh('ip', ['netns', 'del', p]);
      sh('ip', ['netns', 'del', vm]);
    });
    const cidr = status.underlay.subnets[0]!.cidr;
    const ip = cidr.replace(/\.0\/24$/, '.9');
    mustSh('ip', ['netns', 'add', vm]);
    mustSh('ip', ['link', 'add', 'uplink0', 'netns', vm, 'type', 'veth', 'peer', 'name', 'ndvm', 'netns', underlay.replace('/run/netns/', '')]);
    mustSh('nsenter', [`--net=${underlay}`, 'ip', 'link', 'set', 'ndvm', 'master', status.underlay.subnets[0]!.bridge, 'up']);
    mustSh('nsenter', [`--net=${vmNs}`, 'ip', 'addr', 'add', `${ip}/24`, 'dev', 'uplink0']);
    mustSh('nsenter', [`--net=${vmNs}`, 'ip', 'link', 'set', 'uplink0', 'up']);
    mustSh('nsenter', [`--net=${vmNs}`, 'ip', 'link', 'set', 'lo', 'up']);

    const node = sh('nsenter', [`--net=${vmNs}`, join(PROVISION, 'node'), '--sluice', SLUICE_CMD,
      '--node-name', 'pv1', '--underlay-ip', ip, '--store', etcd, '--mode', 'vxlan',
      '--store-ca', labTls.ca, '--store-cert', nodeCert.cert, '--store-key', nodeCert.key,
      '--pin-root', cfg.pinRoot, '--state-dir', cfg.stateDir, '--run-dir', cfg.runDir, '--config-file', cfg.configFile,
      '--cni-bin-dir', cfg.bin, '--cni-conf-dir', cfg.conf, '--systemd-dir', cfg.systemd, '--no-systemctl', '--start-agent']);
    t.equal(node.status, 0, 'provision node succeeds', { stdout: node.stdout, stderr: node.stderr });
    t.match(node.stderr, /uplink uplink0/, 'found the uplink by the underlay address');
    const written = readFileSync(cfg.configFile, 'utf8');
    t.match(written, /nodeName: pv1/, 'node config: name');
    t.match(written, /uplink: uplink0/, 'node config: uplink');
    t.match(written, new RegExp(`store: ${etcd.replace(/[/.]/g, '\\$&')}`), 'node config: the lab\'s etcd');
    t.match(written, `storeCert: ${nodeCert.cert}`, 'node config: its client certificate');
    t.equal(readlinkSync(join(cfg.bin, 'sluice')), join(REPO, 'bin', 'sluice-cni.js'), 'CNI plugin linked in the temp bin dir');
    t.match(readFileSync(join(cfg.conf, '10-sluice.conflist'), 'utf8'), join(cfg.runDir, 'agent.sock'), 'conflist names the agent socket');
    t.ok(existsSync(join(cfg.systemd, 'sluice-agent.service')), 'agent unit written to the temp systemd dir');
    t.match(node.stdout, /ready/i, 'the agent answered ready');

    const demo = sh('nsenter', [`--net=${vmNs}`, join(PROVISION, 'demo'), '--sluice', SLUICE_CMD, '--config', cfg.configFile,
      '--pods', '2', '--prefix', lab, '--policy', join(PROVISION, 'demo-policy.yaml')]);
    t.equal(demo.status, 0, 'provision demo succeeds', { stdout: demo.stdout, stderr: demo.stderr });
    for (const p of pods) t.match(demo.stdout, p, `pod ${p} listed`);
    const again = sh('nsenter', [`--net=${vmNs}`, join(PROVISION, 'demo'), '--sluice', SLUICE_CMD, '--config', cfg.configFile, '--pods', '2', '--prefix', lab]);
    t.equal(again.status, 0, 'a second demo run succeeds');
    t.match(again.stdout, /exists/, 'and keeps the pods');

    // Cross-node: the new node's client pod reaches the lab's pod over VXLAN, through etcd.
    const list = JSON.parse(sluiceIn(vmNs, ['--config', cfg.configFile, 'endpoint', 'list', '-o', 'json']).stdout) as { name: string; ip: string }[];
    const web = list.find((e) => e.name === `default/${pods[0]}`)!;
    t.ok(web?.ip, 'the web pod has an address');
    const reach = (from: string, to: string) => {
      for (let i = 0; i < 15; i++) { if (inNs(from, 'ping', ['-c', '1', '-W', '1', to]).status === 0) return true; spawnSync('sleep', ['1']); }
      return false;
    };
    t.ok(reach(`/run/netns/${pods[1]}`, target.ip!), `client pod on the new node reaches ${target.name} on the lab node`);
    // The policy: web accepts role=client only. The lab's pod (app=<name>) is denied.
    let denied = false;
    for (let i = 0; i < 15 && !denied; i++) { denied = inNs(target.netns, 'ping', ['-c', '1', '-W', '1', web.ip]).status !== 0; if (!denied) spawnSync('sleep', ['1']); }
    t.ok(denied, 'the lab pod is denied by the demo policy');
    t.ok(reach(`/run/netns/${pods[1]}`, web.ip), 'the client pod reaches web (same node, allowed)');

    const un = sluiceIn(vmNs, ['node', 'uninstall', '--config-file', cfg.configFile, '--cni-bin-dir', cfg.bin, '--cni-conf-dir', cfg.conf, '--systemd-dir', cfg.systemd, '--no-systemctl']);
    t.equal(un.status, 0, 'uninstall cleans the temp dirs', { stderr: un.stderr });
    t.notOk(existsSync(join(cfg.bin, 'sluice')), 'plugin link removed');
  });
}

function alive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch { return false; }
}

function sluiceIn(ns: string, args: readonly string[]) {
  return sh('nsenter', [`--net=${ns}`, process.execPath, SLUICE_BIN, ...args]);
}
