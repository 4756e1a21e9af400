/**
 * scripts/provision/pki, the Vagrant cluster's store certificates, made on the host: a real
 * etcd serves its etcd certificate with client-certificate authentication (as
 * scripts/provision/etcd configures Debian's), a node's certificate is let in and one of
 * another CA is not; a second run changes nothing; bad arguments are refused by name.
 */
import t from 'tap';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { issueCert, makeCA } from '../../src/lab/certs.js';
import { openStore } from '../../src/store/open.js';
import { REPO, sh, tempDir } from '../helpers/env.js';
import { HAVE_ETCD, startEtcd } from '../helpers/etcd.js';

const PKI = join(REPO, 'scripts', 'provision', 'pki');

if (!HAVE_ETCD) {
  t.plan(0, 'needs /usr/bin/etcd');
} else {
  t.test('the certificates pki makes work with etcd, and only they', async (tt) => {
    const dir = tempDir(tt, 'slt-pki');
    const args = ['--ca-dir', join(dir, 'ca'), '--out', join(dir, 'out'), '--etcd-ip', '192.168.56.11', '--nodes', 'node1,node2'];
    const r = sh(PKI, args);
    tt.equal(r.status, 0, `pki ran: ${r.stderr}`);
    const out = (f: string) => join(dir, 'out', f);
    for (const f of ['etcd-key.pem', 'node1-key.pem', 'node2-key.pem']) tt.equal(statSync(out(f)).mode & 0o777, 0o600, `${f} is 0600`);
    tt.notOk(sh('ls', [out('ca-key.pem')]).status === 0, 'the CA key is not among what goes to the VMs');
    const san = sh('openssl', ['x509', '-in', out('etcd.pem'), '-noout', '-ext', 'subjectAltName']).stdout;
    tt.match(san, /IP Address:192\.168\.56\.11, IP Address:127\.0\.0\.1/, 'etcd\'s certificate names its address and loopback');
    const before = ['ca.pem', 'etcd.pem', 'node1.pem', 'node1-key.pem'].map((f) => readFileSync(out(f), 'utf8'));
    tt.equal(sh(PKI, args).status, 0, 'a second run');
    tt.same(['ca.pem', 'etcd.pem', 'node1.pem', 'node1-key.pem'].map((f) => readFileSync(out(f), 'utf8')), before, 'changes nothing');

    const etcd = await startEtcd(tt, { pki: { ca: out('ca.pem'), cert: out('etcd.pem'), key: out('etcd-key.pem'), client: { cert: out('node1.pem'), key: out('node1-key.pem') } } });
    const spec = `etcds://${etcd.endpoint}/pki/`;
    const s = await openStore(spec, { stateDir: '/unused', timeoutMs: 3000, tls: { ca: out('ca.pem'), cert: out('node2.pem'), key: out('node2-key.pem') } });
    tt.teardown(() => s.close());
    await s.put('k', 'v');
    tt.equal((await s.get('k'))?.value, 'v', 'node2\'s certificate: put and get through etcd with client-certificate auth');

    const other = makeCA(join(dir, 'other'), 'not the cluster CA');
    const forged = issueCert(other, join(dir, 'other'), 'node3', { cn: 'node1', usage: 'client' });
    const f = await openStore(spec, { stateDir: '/unused', timeoutMs: 3000, tls: { ca: out('ca.pem'), cert: forged.cert, key: forged.key } });
    tt.teardown(() => f.close());
    await tt.rejects(f.get('k'), /our client certificate \(CN=node1\) was refused/, 'a certificate of another CA with a node\'s name is refused');
  });

  t.test('bad arguments are refused, naming them', async (tt) => {
    const dir = tempDir(tt, 'slt-pki-bad');
    const base = ['--ca-dir', join(dir, 'ca'), '--out', join(dir, 'out')];
    const cases: [string[], RegExp][] = [
      [[...base, '--etcd-ip', '192.168.56.11'], /--ca-dir, --out, --etcd-ip and --nodes are required/],
      [[...base, '--etcd-ip', 'etcd.local', '--nodes', 'n1'], /--etcd-ip 'etcd\.local' is not an IPv4 address/],
      [[...base, '--etcd-ip', '192.168.56.11', '--nodes', 'n1,Bad_Name'], /node name 'Bad_Name' is not a lower-case DNS label/],
      [[...base, '--bogus'], /unknown argument '--bogus'/],
    ];
    for (const [args, want] of cases) {
      const r = sh(PKI, args);
      tt.equal(r.status, 2, `exit 2 for ${args.slice(4).join(' ')}`);
      tt.match(r.stderr, want);
      tt.notOk(sh('ls', [join(dir, 'out')]).status === 0 || sh('ls', [join(dir, 'ca')]).status === 0, 'and nothing was made');
    }
  });
}
