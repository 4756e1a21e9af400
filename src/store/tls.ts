/**
 * The TLS settings of an etcd store (etcds://): the CA that signed etcd's certificate, and
 * this node's client certificate and key (config keys storeCA, storeCert, storeKey).
 *
 *  - tlsProblem (pure): which combinations of spec and files make sense. A certificate
 *    needs its key and the reverse; any of them with a plain etcd:// spec is an error (they
 *    would be ignored, and the store spoken to in clear text); etcds:// with no CA trusts
 *    the system's CAs.
 *  - loadTls: reads the files before anything connects, so a missing file, a file that is
 *    not PEM, a key that does not belong to its certificate or a client certificate that
 *    has expired is reported naming the file, not as a failed TLS handshake later.
 */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { StoreError } from './types.js';

/** Paths of the PEM files (absent: not given). */
export interface StoreTlsFiles {
  ca?: string;
  cert?: string;
  key?: string;
}

/** What the etcd client takes: the files' contents. */
export interface StoreTlsMaterial {
  /** Absent: the system's CAs. */
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  /** The client certificate's subject and expiry, for messages. */
  clientSubject?: string;
}

/** The config key of each file, for messages. */
export const TLS_KEYS = { ca: 'storeCA', cert: 'storeCert', key: 'storeKey' } as const;

/**
 * Why these files do not go with a store spec whose TLS is `tls` (etcds://), naming the
 * config key; undefined when they do.
 */
export function tlsProblem(tls: boolean, f: StoreTlsFiles): { key: string; problem: string } | undefined {
  const given = (Object.keys(TLS_KEYS) as (keyof StoreTlsFiles)[]).filter((k) => f[k]);
  if (!tls && given.length) {
    return { key: TLS_KEYS[given[0]!], problem: `${given.map((k) => TLS_KEYS[k]).join(', ')} given, but the store is not spoken to over TLS: write the store as etcds://… (or leave ${given.length > 1 ? 'them' : 'it'} out)` };
  }
  if (f.cert && !f.key) return { key: TLS_KEYS.cert, problem: `a client certificate needs its key: set storeKey too` };
  if (f.key && !f.cert) return { key: TLS_KEYS.key, problem: `a client key needs its certificate: set storeCert too` };
  return undefined;
}

function read(what: keyof StoreTlsFiles, path: string, label: RegExp): Buffer {
  let data: Buffer;
  try {
    data = readFileSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new StoreError(`${TLS_KEYS[what]} ${path}: cannot read it (${code === 'ENOENT' ? 'no such file' : code ?? (e as Error).message})`);
  }
  if (!label.test(data.toString('latin1'))) {
    throw new StoreError(`${TLS_KEYS[what]} ${path}: not a PEM ${what === 'key' ? 'private key' : 'certificate'} (expected a "-----BEGIN ${what === 'key' ? '… PRIVATE KEY' : 'CERTIFICATE'}-----" block)`);
  }
  return data;
}

/** Reads and checks the files (see the header); `now` for tests. */
export function loadTls(f: StoreTlsFiles, now = new Date()): StoreTlsMaterial {
  const out: StoreTlsMaterial = {};
  if (f.ca) {
    out.ca = read('ca', f.ca, /-----BEGIN CERTIFICATE-----/);
    try {
      new X509Certificate(out.ca);
    } catch (e) {
      throw new StoreError(`storeCA ${f.ca}: not a valid certificate (${(e as Error).message})`);
    }
  }
  if (f.cert && f.key) {
    out.cert = read('cert', f.cert, /-----BEGIN CERTIFICATE-----/);
    out.key = read('key', f.key, /-----BEGIN ([A-Z]+ )?PRIVATE KEY-----/);
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(out.cert);
    } catch (e) {
      throw new StoreError(`storeCert ${f.cert}: not a valid certificate (${(e as Error).message})`);
    }
    let key;
    try {
      key = createPrivateKey(out.key);
    } catch (e) {
      throw new StoreError(`storeKey ${f.key}: not a valid private key (${(e as Error).message})`);
    }
    if (!cert.checkPrivateKey(key)) throw new StoreError(`storeKey ${f.key} is not the key of the certificate storeCert ${f.cert}`);
    const from = new Date(cert.validFrom);
    const to = new Date(cert.validTo);
    if (now > to) throw new StoreError(`storeCert ${f.cert}: the client certificate expired on ${to.toISOString()}: etcd would refuse it`);
    if (now < from) throw new StoreError(`storeCert ${f.cert}: the client certificate is valid only from ${from.toISOString()}: etcd would refuse it`);
    out.clientSubject = cert.subject.replace(/\n/g, ', ');
  }
  return out;
}

let quiet = false;

/**
 * grpc-js names the TLS server by the host it dials, and Node warns once per process
 * (DEP0123, "Setting the TLS ServerName to an IP address…") when that is an IP address: on
 * the stderr of every CLI call to an etcds:// store given by address, as the lab's is. Only
 * that warning is dropped, from the first TLS store a process opens on; the server's
 * certificate is still checked against the address (its IP SANs).
 */
export function quietIpServernameWarning(): void {
  if (quiet) return;
  quiet = true;
  const emit = process.emitWarning.bind(process) as (...a: unknown[]) => void;
  process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
    const [typeOrOptions, code] = rest;
    const c = typeof typeOrOptions === 'object' && typeOrOptions !== null ? (typeOrOptions as { code?: unknown }).code : code;
    if (c === 'DEP0123') return;
    emit(warning, ...rest);
  }) as typeof process.emitWarning;
}
