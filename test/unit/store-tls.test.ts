/**
 * The TLS settings of an etcds:// store (src/store/tls.ts, openStore): which combinations
 * are refused, and the files checked before anything connects (certificates made with
 * openssl by src/lab/certs.ts). No etcd here: test/e2e/store-tls.test.ts has the handshakes.
 */
import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { issueCert, makeCA, opensslDate } from '../../src/lab/certs.js';
import { openStore } from '../../src/store/open.js';
import { loadTls, quietIpServernameWarning, tlsProblem } from '../../src/store/tls.js';
import { tempDir } from '../helpers/env.js';

const dir = tempDir(t, 'slt-tls');
const ca = makeCA(dir, 'unit CA');
const client = issueCert(ca, dir, 'client', { cn: 'node-1', usage: 'client' });
const other = issueCert(ca, dir, 'other', { cn: 'node-2', usage: 'client' });
const DAY = 86_400_000;
const expired = issueCert(ca, dir, 'expired', {
  cn: 'old', usage: 'client', startDate: opensslDate(new Date(Date.now() - 3 * DAY)), endDate: opensslDate(new Date(Date.now() - DAY)),
});
const files = { ca: ca.cert, cert: client.cert, key: client.key };

t.test('tlsProblem: combinations', async (t) => {
  t.equal(tlsProblem(true, files), undefined, 'etcds:// with all three');
  t.equal(tlsProblem(true, { ca: ca.cert }), undefined, 'etcds:// with a CA only (etcd without client-cert-auth)');
  t.equal(tlsProblem(true, {}), undefined, "etcds:// with nothing: the system's CAs");
  t.equal(tlsProblem(false, {}), undefined, 'etcd:// with nothing');
  t.same(tlsProblem(false, { ca: ca.cert }), { key: 'storeCA', problem: 'storeCA given, but the store is not spoken to over TLS: write the store as etcds://… (or leave it out)' });
  t.same(tlsProblem(false, files), { key: 'storeCA', problem: 'storeCA, storeCert, storeKey given, but the store is not spoken to over TLS: write the store as etcds://… (or leave them out)' });
  t.same(tlsProblem(true, { ca: ca.cert, cert: client.cert }), { key: 'storeCert', problem: 'a client certificate needs its key: set storeKey too' });
  t.same(tlsProblem(true, { key: client.key }), { key: 'storeKey', problem: 'a client key needs its certificate: set storeCert too' });
});

t.test('loadTls: reads and checks the files', async (t) => {
  const m = loadTls(files);
  t.ok(m.ca?.toString().startsWith('-----BEGIN CERTIFICATE-----'));
  t.ok(m.cert && m.key);
  t.equal(m.clientSubject, 'CN=node-1');
  t.same(Object.keys(loadTls({ ca: ca.cert })), ['ca'], 'a CA alone');
  const junk = join(dir, 'junk.pem');
  writeFileSync(junk, 'hello\n');
  const broken = join(dir, 'broken.pem');
  writeFileSync(broken, '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n');
  const unreadable = join(dir, 'none.pem');
  const cases: [Parameters<typeof loadTls>[0], RegExp][] = [
    [{ ca: unreadable }, new RegExp(`^storeCA ${unreadable}: cannot read it \\(no such file\\)$`)],
    [{ ca: dir }, new RegExp(`^storeCA ${dir}: cannot read it \\(EISDIR\\)$`)],
    [{ ca: junk }, new RegExp(`^storeCA ${junk}: not a PEM certificate \\(expected a "-----BEGIN CERTIFICATE-----" block\\)$`)],
    [{ ca: broken }, new RegExp(`^storeCA ${broken}: not a valid certificate`)],
    [{ ...files, cert: junk }, new RegExp(`^storeCert ${junk}: not a PEM certificate`)],
    [{ ...files, cert: client.key }, new RegExp(`^storeCert ${client.key}: not a PEM certificate`)],
    [{ ...files, key: client.cert }, new RegExp(`^storeKey ${client.cert}: not a PEM private key \\(expected a "-----BEGIN … PRIVATE KEY-----" block\\)$`)],
    [{ ...files, key: other.key }, new RegExp(`^storeKey ${other.key} is not the key of the certificate storeCert ${client.cert}$`)],
    [{ ...files, cert: expired.cert, key: expired.key }, new RegExp(`^storeCert ${expired.cert}: the client certificate expired on \\d{4}-.*Z: etcd would refuse it$`)],
  ];
  for (const [f, message] of cases) t.throws(() => loadTls(f), { name: 'StoreError', message }, message.source);
  t.throws(() => loadTls(files, new Date(Date.now() - 2 * DAY)), { message: /the client certificate is valid only from .*: etcd would refuse it/ }, 'not valid yet');
});

t.test('openStore: refuses TLS files that do not fit the spec, and bad files, before connecting', async (t) => {
  const o = { stateDir: dir, timeoutMs: 300 };
  await t.rejects(openStore('etcd://127.0.0.1:1/x', { ...o, tls: { ca: ca.cert } }),
    { name: 'StoreError', message: 'store etcd://127.0.0.1:1/x: storeCA: storeCA given, but the store is not spoken to over TLS: write the store as etcds://… (or leave it out)' });
  await t.rejects(openStore('file', { ...o, tls: { cert: client.cert, key: client.key } }), { message: /^store file: storeCert: storeCert, storeKey given, but the store is not spoken to over TLS/ });
  await t.rejects(openStore('etcds://127.0.0.1:1/x', { ...o, tls: { cert: client.cert } }), { message: 'store etcds://127.0.0.1:1/x: storeCert: a client certificate needs its key: set storeKey too' });
  await t.rejects(openStore('etcds://127.0.0.1:1/x', { ...o, tls: { ...files, ca: join(dir, 'none.pem') } }), { message: /^storeCA .*none\.pem: cannot read it \(no such file\)$/ });
  const s = await openStore('etcds://127.0.0.1:1/x', { ...o, tls: files });
  t.teardown(() => s.close());
  t.equal(s.description, 'etcds://127.0.0.1:1/x', 'good files: opened (lazily: nothing listens there)');
});

t.test('the IP-servername deprecation warning (DEP0123) is dropped, and only it', async (t) => {
  const seen: string[] = [];
  const listen = (w: Error & { code?: string }) => seen.push(w.code ?? w.message);
  process.on('warning', listen);
  try {
    quietIpServernameWarning();
    quietIpServernameWarning(); // idempotent: one wrapper
    process.emitWarning('Setting the TLS ServerName to an IP address is not permitted', 'DeprecationWarning', 'DEP0123');
    process.emitWarning('as an options object', { type: 'DeprecationWarning', code: 'DEP0123' });
    process.emitWarning('another', 'DeprecationWarning', 'DEP9999');
    process.emitWarning('plain');
    await new Promise((r) => setImmediate(r));
    t.same(seen, ['DEP9999', 'plain'], 'the others still reach the process');
  } finally {
    process.off('warning', listen);
  }
});
