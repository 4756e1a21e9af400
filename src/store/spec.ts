/**
 * Store specs, as given in the configuration or on the command line:
 *
 *   file                              the embedded file store in <stateDir>/store
 *   file:/abs/dir                     the embedded file store in /abs/dir
 *   etcd://host:port[,host:port…][/prefix]
 *                                     etcd over plain TCP; the port defaults to 2379, the prefix to /sluice/
 *   etcds://host:port[,host:port…][/prefix]
 *                                     etcd over TLS (the CA, client certificate and key are
 *                                     the config keys storeCA, storeCert, storeKey: tls.ts)
 *
 * Pure: parsing touches no file and no network.
 */

export const DEFAULT_ETCD_PREFIX = '/sluice/';
import { isAbsolute, normalize } from 'node:path';
import { isIPv4, isIPv6 } from 'node:net';
import { StoreError } from './types.js';

export type StoreSpec =
  | { kind: 'file'; /** Absent: <stateDir>/store. */ path?: string }
  | { kind: 'etcd'; endpoints: string[]; prefix: string; /** etcds://: TLS. */ tls: boolean };

const ETCD_FORMS = 'etcd://host:port[,host:port…][/prefix] (or etcds:// for TLS)';

export const DEFAULT_ETCD_PORT = 2379;

const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

function bad(spec: string, why: string): StoreError {
  return new StoreError(`bad store ${JSON.stringify(spec)}: ${why}`);
}

/** "host[:port]" → "host:port" (IPv6 in brackets), or an error naming what is wrong. */
function parseEndpoint(spec: string, ep: string): string {
  let host: string;
  let port: string | undefined;
  const v6 = /^\[([^\]]*)\](?::(.*))?$/.exec(ep);
  if (v6) {
    host = v6[1]!;
    port = v6[2];
    if (!isIPv6(host)) throw bad(spec, `bad host "[${host}]" (not an IPv6 address)`);
  } else {
    const i = ep.lastIndexOf(':');
    host = i < 0 ? ep : ep.slice(0, i);
    port = i < 0 ? undefined : ep.slice(i + 1);
    if (host.includes(':')) throw bad(spec, `bad host "${host}" (write IPv6 addresses in brackets: [${host}]:${DEFAULT_ETCD_PORT})`);
    if (host === '') throw bad(spec, `missing host in "${ep}"`);
    const looksV4 = /^[\d.]+$/.test(host);
    if (looksV4 ? !isIPv4(host) : !HOSTNAME.test(host)) throw bad(spec, `bad host "${host}"`);
  }
  let n = DEFAULT_ETCD_PORT;
  if (port !== undefined) {
    if (!/^\d{1,5}$/.test(port) || (n = Number(port)) < 1 || n > 65535) {
      throw bad(spec, `bad port "${port}" of "${ep}" (expected 1-65535)`);
    }
  }
  return v6 ? `[${host}]:${n}` : `${host}:${n}`;
}

/** Parses a store spec (pure: no file or network access). */
export function parseStoreSpec(spec: string): StoreSpec {
  const s = spec.trim();
  if (s === 'file') return { kind: 'file' };
  if (s.startsWith('file:')) {
    let path = s.slice('file:'.length);
    if (path.startsWith('//')) {
      path = path.slice(2);
      if (!path.startsWith('/')) throw bad(spec, 'file:// takes no host: write file:/abs/dir');
    }
    if (path === '') throw bad(spec, 'missing path after "file:" (write "file" for the default or file:/abs/dir)');
    if (!isAbsolute(path)) throw bad(spec, `the path "${path}" is not absolute`);
    return { kind: 'file', path: normalize(path) };
  }
  if (/^etcds?:(?!\/\/)/i.test(s)) throw bad(spec, `expected ${ETCD_FORMS}`);
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(s);
  const scheme = m?.[1]?.toLowerCase();
  if (!m || (scheme !== 'etcd' && scheme !== 'etcds')) {
    const named = m?.[1] ?? /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(s)?.[1];
    throw bad(spec, `${named ? `unknown scheme "${named}"` : 'unknown kind of store'} (expected file, file:/abs/dir or ${ETCD_FORMS})`);
  }
  const rest = s.slice(m[0].length);
  const slash = rest.indexOf('/');
  const hostPart = slash < 0 ? rest : rest.slice(0, slash);
  const path = slash < 0 ? '' : rest.slice(slash);
  if (hostPart === '') throw bad(spec, `missing hosts: expected ${scheme}://host:port[,host:port…]`);
  const endpoints = hostPart.split(',').map((ep) => {
    if (ep === '') throw bad(spec, 'empty host in the host list');
    return parseEndpoint(spec, ep);
  });
  let prefix = DEFAULT_ETCD_PREFIX;
  if (path !== '' && path !== '/') {
    if (/[\s?#]/.test(path) || path.includes('//')) throw bad(spec, `bad prefix "${path}"`);
    prefix = path.endsWith('/') ? path : `${path}/`;
  }
  return { kind: 'etcd', endpoints, prefix, tls: scheme === 'etcds' };
}

