/**
 * Certificates for a store over TLS, made with the openssl command (OpenSSL 3): a CA, and
 * certificates it signs for etcd (server) and for each client. `lab up` makes the lab's
 * with them; the tests make theirs (and the bad ones of the error cases) the same way.
 *
 * Keys are EC P-256 (fast to make), written mode 0600. Certificates are issued with
 * `openssl ca`, the one subcommand of OpenSSL 3.0 that takes explicit validity dates
 * (`-startdate`/`-enddate`): an expired certificate is made by dating both in the past.
 */
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { isIPv4, isIPv6 } from 'node:net';
import { join } from 'node:path';
import { run } from '../net/exec.js';

export interface CertAuthority {
  /** The CA's certificate (what a peer trusts), PEM. */
  cert: string;
  /** Its private key, PEM. */
  key: string;
  /** Where openssl ca keeps its database and serial. */
  dir: string;
}

export interface IssuedCert {
  cert: string;
  key: string;
}

export type CertUsage = 'server' | 'client';

export interface IssueOptions {
  /** The certificate's common name. */
  cn: string;
  usage: CertUsage;
  /** Subject alternative names: IP addresses and DNS names (a server's names; hostname verification checks them). */
  sans?: string[];
  /** Validity, as openssl dates (YYYYMMDDHHMMSSZ); default: from now for `days`. */
  startDate?: string;
  endDate?: string;
  /** Default 825. */
  days?: number;
}

/** An openssl date (YYYYMMDDHHMMSSZ) of `d`. */
export function opensslDate(d: Date): string {
  return `${d.toISOString().replace(/[-:T]/g, '').slice(0, 14)}Z`;
}

function openssl(args: string[]): void {
  run('openssl', args);
}

function newKey(path: string): void {
  openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', path]);
  chmodSync(path, 0o600);
}

/** A new self-signed CA in `dir` (made if missing): ca.pem and ca-key.pem (0600). */
export function makeCA(dir: string, cn: string, days = 3650): CertAuthority {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const ca = { cert: join(dir, 'ca.pem'), key: join(dir, 'ca-key.pem'), dir: join(dir, '.ca') };
  newKey(ca.key);
  openssl(['req', '-x509', '-new', '-key', ca.key, '-out', ca.cert, '-days', String(days), '-subj', `/CN=${cn}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  mkdirSync(ca.dir, { mode: 0o700 });
  writeFileSync(join(ca.dir, 'index.txt'), '');
  return ca;
}

/** A key and a certificate signed by `ca`: <dir>/<name>.pem and <dir>/<name>-key.pem (0600). */
export function issueCert(ca: CertAuthority, dir: string, name: string, o: IssueOptions): IssuedCert {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const out = { cert: join(dir, `${name}.pem`), key: join(dir, `${name}-key.pem`) };
  newKey(out.key);
  const csr = join(ca.dir, `${name}.csr`);
  openssl(['req', '-new', '-key', out.key, '-out', csr, '-subj', `/CN=${o.cn}`]);
  const sans = (o.sans ?? []).map((s) => (isIPv4(s) || isIPv6(s) ? `IP:${s}` : `DNS:${s}`));
  const conf = join(ca.dir, `${name}.cnf`);
  writeFileSync(conf, [
    '[ca]', 'default_ca = ca',
    '[ca]', `database = ${join(ca.dir, 'index.txt')}`, `new_certs_dir = ${ca.dir}`, 'default_md = sha256',
    'policy = any', 'unique_subject = no', 'copy_extensions = none', 'rand_serial = yes', 'email_in_dn = no',
    '[any]', 'commonName = supplied',
    '[ext]', 'basicConstraints = critical,CA:FALSE', 'keyUsage = critical,digitalSignature,keyEncipherment',
    // etcd's own gateway connects to its gRPC port with the server certificate as its
    // client certificate: without clientAuth, etcd rejects itself ("incompatible key usage").
    `extendedKeyUsage = ${o.usage === 'server' ? 'serverAuth,clientAuth' : 'clientAuth'}`,
    ...(sans.length ? [`subjectAltName = ${sans.join(',')}`] : []),
    '',
  ].join('\n'));
  const dates = o.startDate || o.endDate
    ? ['-startdate', o.startDate ?? opensslDate(new Date()), '-enddate', o.endDate ?? opensslDate(new Date(Date.now() + 825 * 86_400_000))]
    : ['-days', String(o.days ?? 825)];
  openssl(['ca', '-batch', '-notext', '-config', conf, '-extensions', 'ext', '-cert', ca.cert, '-keyfile', ca.key,
    '-in', csr, '-out', out.cert, ...dates]);
  return out;
}
