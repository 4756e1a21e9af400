/**
 * What a failed connection to etcd most likely means when TLS is involved, from the error
 * grpc-js reports ("14 UNAVAILABLE: No connection established. Last error: …"). What it
 * says in each case (grpc-js 1.14 on Node 20 against etcd 3.4, tried one by one):
 *
 *   wrong CA / server certificate of an unknown CA   "unable to verify the first certificate"
 *                                                    (or "self-signed certificate…",
 *                                                    "unable to get local issuer certificate")
 *   etcd's certificate expired                       "certificate has expired"
 *   etcd's certificate names another host            "ERR_TLS_CERT_ALTNAME_INVALID … Hostname/IP does not match…"
 *   etcd refused our client certificate, or we       "… ssl3_read_bytes:sslv3 alert bad certificate … SSL alert number 42"
 *     gave none (expired, another CA: the same alert)
 *   TLS to a plain-TCP etcd                          "Client network socket disconnected before secure TLS connection was established"
 *   plain TCP to a TLS etcd                          "Failed to connect" (etcd answers the
 *                                                    clear-text bytes with an HTTP 400 and closes)
 *
 * Certificate problems are `permanent`: retrying cannot help, the operation fails at once.
 * The other two are likely but not certain (a server restarting can close a connection
 * early too): retried within the deadline, then reported with the likely cause.
 */
export interface TlsCause {
  why: string;
  permanent: boolean;
}

export interface TlsContext {
  /** The store speaks TLS (etcds://). */
  tls: boolean;
  /** Subject of our client certificate (undefined: none given). */
  clientCert?: string;
}

function lastError(m: string): string {
  const i = m.indexOf('Last error: ');
  const s = i < 0 ? m : m.slice(i + 'Last error: '.length);
  return s.replace(/\.?\s*Resolution note:[\s\S]*$/, '').replace(/^Error(?: \[[A-Z_]+\])?: /, '').replace(/\s*\(\d{4}-\d\d-\d\dT[\d:.]+Z\)\s*$/, '').trim();
}

/** The likely cause of `e` if it is a TLS failure (or a TLS mismatch), else undefined. */
export function tlsCause(e: unknown, c: TlsContext): TlsCause | undefined {
  const m = (e as Error | undefined)?.message ?? '';
  if (!/UNAVAILABLE|\bTLS\b|SSL|certificate/i.test(m)) return undefined;
  const raw = lastError(m);
  if (c.tls) {
    if (/unable to verify the first certificate|unable to get (local )?issuer certificate|self[- ]signed certificate|certificate signature failure|UNABLE_TO_VERIFY_LEAF_SIGNATURE/i.test(m)) {
      return { permanent: true, why: `TLS: etcd's certificate is not signed by a CA we trust (wrong storeCA, or etcd serves a certificate of another CA): ${raw}` };
    }
    if (/certificate has expired/i.test(m)) return { permanent: true, why: `TLS: etcd's certificate has expired (renew etcd's --cert-file): ${raw}` };
    if (/certificate is not yet valid/i.test(m)) return { permanent: true, why: `TLS: etcd's certificate is not valid yet (check the clocks): ${raw}` };
    if (/ERR_TLS_CERT_ALTNAME_INVALID|does not match certificate's altnames/i.test(m)) {
      return { permanent: true, why: `TLS: etcd's certificate does not name the host of the store spec (hostname verification: use a host or address the certificate lists): ${raw}` };
    }
    if (/alert (bad certificate|certificate required|unknown ca|certificate expired|certificate unknown|certificate revoked|unsupported certificate)|SSL alert number (42|43|44|45|46|48|116)\b/i.test(m)) {
      const ours = c.clientCert
        ? `our client certificate (${c.clientCert}) was refused: is it signed by a CA etcd trusts (its --trusted-ca-file), and still valid?`
        : 'we gave no client certificate, and etcd requires one (--client-cert-auth): set storeCert and storeKey';
      return { permanent: true, why: `TLS: etcd refused the handshake: ${ours} (${raw.replace(/^[0-9A-F]+:error:[0-9A-F]+:SSL routines:[a-z0-9_]+:/, '').replace(/:\.\.\/.*?(SSL alert number \d+)/, ' ($1)')})` };
    }
    if (/Client network socket disconnected before secure TLS connection|wrong version number|packet length too long|unknown protocol/i.test(m)) {
      return { permanent: false, why: `TLS: the server did not answer TLS (a plain-TCP etcd? then write etcd://, without storeCA, storeCert and storeKey): ${raw}` };
    }
    return undefined;
  }
  if (/Last error: Failed to connect\b/.test(m)) {
    return { permanent: false, why: `the server closed the connection before answering gRPC (an etcd that serves TLS? then write etcds:// and set storeCA, storeCert and storeKey): ${raw}` };
  }
  return undefined;
}
