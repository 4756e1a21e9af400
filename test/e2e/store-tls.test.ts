/**
 * The etcd store over TLS, against real etcds (test/helpers/etcd.ts) that require client
 * certificates: what works (hostname verification by address and by name), and the
 * error of each way TLS goes wrong, each with its message and failing within the timeout.
 */
import t, { type Test } from 'tap';
import { readFileSync } from 'node:fs';
import { issueCert, makeCA, opensslDate } from '../../src/lab/certs.js';
import { EtcdStore } from '../../src/store/etcd.js';
import { openStore, type StoreTlsFiles } from '../../src/store/open.js';
import type { StoreTlsMaterial } from '../../src/store/tls.js';
import type { Store } from '../../src/store/types.js';
import { tempDir } from '../helpers/env.js';
import { HAVE_ETCD, startEtcd, type EtcdServer } from '../helpers/etcd.js';

const TIMEOUT = 3000;
const DAY = 86_400_000;
const past = { startDate: opensslDate(new Date(Date.now() - 3 * DAY)), endDate: opensslDate(new Date(Date.now() - DAY)) };
type T = Test;

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

/** Opens `spec` with `tls` and does a get: resolves what it gave or the error, and how long it took. */
async function attempt(tt: T, spec: string, tls: StoreTlsFiles): Promise<{ err: Error | undefined; ms: number }> {
  const t0 = Date.now();
  let s: Store | undefined;
  try {
    s = await openStore(spec, { stateDir: '/unused', timeoutMs: TIMEOUT, tls });
    tt.teardown(() => s?.close());
    await s.get('k');
    return { err: undefined, ms: Date.now() - t0 };
  } catch (e) {
    return { err: e as Error, ms: Date.now() - t0 };
  }
}

/** Like attempt, but with the files' contents handed to EtcdStore as they are (no local checks). */
async function attemptRaw(tt: T, etcd: EtcdServer, tls: StoreTlsMaterial): Promise<{ err: Error | undefined; ms: number }> {
  const s = new EtcdStore({ endpoints: [etcd.endpoint], prefix: '/tls/', timeoutMs: TIMEOUT, tls });
  tt.teardown(() => s.close());
  const t0 = Date.now();
  const err = await s.get('k').then(() => undefined, (e: unknown) => e as Error);
  return { err, ms: Date.now() - t0 };
}

function failsWith(tt: T, r: { err: Error | undefined; ms: number }, message: RegExp, what: string, withinMs = 1000): void {
  tt.match(r.err, { name: 'StoreError', message }, `${what}: ${r.err?.message ?? 'no error'}`);
  tt.ok(r.ms < withinMs, `${what}: failed after ${r.ms} ms (under ${withinMs})`);
}

if (!HAVE_ETCD) {
  t.plan(0, 'etcd is not installed');
} else {
  let etcd: EtcdServer;
  t.before(async () => {
    etcd = await startEtcd(t);
  });

  t.test('the right CA and client certificate work; the host is verified by address and by name', async (tt) => {
    const a = await openStore(etcd.spec('/tls/'), { stateDir: '/unused', tls: etcd.tls });
    tt.teardown(() => a.close());
    await a.put('k', 'v');
    tt.equal(a.description, `etcds://${etcd.endpoint}/tls`);
    const b = await openStore(etcd.spec('/tls/', 'localhost'), { stateDir: '/unused', tls: etcd.tls });
    tt.teardown(() => b.close());
    tt.equal((await b.get('k'))?.value, 'v', 'localhost: a DNS name of the server certificate');
  });

  t.test('a wrong CA: etcd\'s certificate is not trusted', async (tt) => {
    const other = makeCA(tempDir(tt, 'slt-ca'), 'sluice test etcd CA'); // the same name, another key
    const r = await attempt(tt, etcd.spec('/tls/'), { ...etcd.tls, ca: other.cert });
    failsWith(tt, r, new RegExp(`^etcds://${esc(etcd.endpoint)}/tls: get failed: TLS: etcd's certificate is not signed by a CA we trust \\(wrong storeCA, or etcd serves a certificate of another CA\\): unable to verify the first certificate$`), 'wrong CA');
  });

  t.test('no client certificate: etcd requires one', async (tt) => {
    const r = await attempt(tt, etcd.spec('/tls/'), { ca: etcd.tls.ca });
    failsWith(tt, r, /: get failed: TLS: etcd refused the handshake: we gave no client certificate, and etcd requires one \(--client-cert-auth\): set storeCert and storeKey \(.*alert bad certificate.*\)$/, 'no client certificate');
  });

  t.test('a client certificate of another CA (a forged client with the same names) is refused', async (tt) => {
    const dir = tempDir(tt, 'slt-forged');
    const forger = makeCA(dir, 'sluice test etcd CA');
    const forged = issueCert(forger, dir, 'client', { cn: 'sluice-test-client', usage: 'client' });
    const r = await attempt(tt, etcd.spec('/tls/'), { ...etcd.tls, cert: forged.cert, key: forged.key });
    failsWith(tt, r, /: get failed: TLS: etcd refused the handshake: our client certificate \(CN=sluice-test-client\) was refused: is it signed by a CA etcd trusts \(its --trusted-ca-file\), and still valid\? \(.*alert bad certificate \(SSL alert number 42\)\)$/, 'forged client');
  });

  t.test('an expired client certificate: refused before connecting, and by etcd', async (tt) => {
    const old = issueCert(etcd.ca!, tempDir(tt, 'slt-old'), 'client', { cn: 'old-client', usage: 'client', ...past });
    const r = await attempt(tt, etcd.spec('/tls/'), { ...etcd.tls, cert: old.cert, key: old.key });
    failsWith(tt, r, new RegExp(`^storeCert ${esc(old.cert)}: the client certificate expired on \\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z: etcd would refuse it$`), 'checked locally', 200);
    const raw = await attemptRaw(tt, etcd, { ca: readFileSync(etcd.tls.ca!), cert: readFileSync(old.cert), key: readFileSync(old.key), clientSubject: 'CN=old-client' });
    failsWith(tt, raw, /: get failed: TLS: etcd refused the handshake: our client certificate \(CN=old-client\) was refused: .*SSL alert number 42/, 'sent anyway');
  });

  t.test('a plain-TCP etcd spoken to with TLS, and a TLS etcd spoken to in plain TCP', async (tt) => {
    const plain = await startEtcd(tt, { tls: false });
    const r = await attempt(tt, `etcds://${plain.endpoint}/tls/`, etcd.tls);
    failsWith(tt, r, new RegExp(`^etcds://${esc(plain.endpoint)}/tls: get failed: TLS: the server did not answer TLS \\(a plain-TCP etcd\\? then write etcd://, without storeCA, storeCert and storeKey\\): Client network socket disconnected before secure TLS connection was established`), 'TLS to plain', TIMEOUT + 1000);
    const r2 = await attempt(tt, `etcd://${etcd.endpoint}/tls/`, {});
    failsWith(tt, r2, new RegExp(`^etcd://${esc(etcd.endpoint)}/tls: get failed: the server closed the connection before answering gRPC \\(an etcd that serves TLS\\? then write etcds:// and set storeCA, storeCert and storeKey\\): Failed to connect`), 'plain to TLS', TIMEOUT + 1000);
  });

  t.test("etcd's certificate expired, or naming another host", async (tt) => {
    const expired = await startEtcd(tt, { serverCert: past });
    const r = await attempt(tt, expired.spec('/tls/'), expired.tls);
    failsWith(tt, r, /: get failed: TLS: etcd's certificate has expired \(renew etcd's --cert-file\): certificate has expired$/, 'expired server certificate');
    const misnamed = await startEtcd(tt, { serverCert: { sans: ['localhost', '10.9.9.9'] } });
    const m = await attempt(tt, misnamed.spec('/tls/'), misnamed.tls);
    failsWith(tt, m, /: get failed: TLS: etcd's certificate does not name the host of the store spec \(hostname verification: use a host or address the certificate lists\): Hostname\/IP does not match certificate's altnames: IP: 127\.0\.0\.1 is not in the cert's list: 10\.9\.9\.9$/, 'misnamed server certificate');
    const byName = await attempt(tt, misnamed.spec('/tls/', 'localhost'), misnamed.tls);
    tt.equal(byName.err, undefined, 'by a name it lists, the same etcd is reached');
  });
}
