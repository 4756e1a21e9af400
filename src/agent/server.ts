/**
 * A small JSON-over-HTTP server on a unix socket: routes by method and path, bodies
 * limited in size, every failure answered as {error: {code, message, details?}}.
 * A stale socket file (left by a killed agent) is replaced; a live one is an error.
 */
import http from 'node:http';
import { chmodSync, existsSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import type { ApiErrorBody } from '../api/types.js';
import { ApiError, apiError } from './errors.js';

export type Handler = (body: unknown, query: URLSearchParams) => Promise<unknown>;

/** A stream's writer: one JSON document per line until the client goes away or end(). */
export interface StreamOut {
  write(doc: unknown): void;
  end(): void;
  /** Called once when the client disconnects or the stream ends. */
  onClose(fn: () => void): void;
}

/**
 * Validates the query (throwing an ApiError answers it like any route) and returns what
 * starts the stream once the 200 is sent.
 */
export type StreamHandler = (query: URLSearchParams) => (out: StreamOut) => void;

export type Route =
  | { method: 'GET' | 'POST'; path: string; handler: Handler }
  | { method: 'GET'; path: string; stream: StreamHandler };

const MAX_BODY = 1 << 20;

function readBody(req: http.IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(new ApiError(413, 'invalid_request', `request body larger than ${MAX_BODY} bytes`));
        req.destroy();
      } else chunks.push(c);
    });
    req.on('error', reject);
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      if (text.trim() === '') return resolve(undefined);
      try {
        resolve(JSON.parse(text));
      } catch (e) {
        reject(new ApiError(400, 'invalid_request', `request body is not JSON: ${(e as Error).message}`));
      }
    });
  });
}

function send(res: http.ServerResponse, status: number, body: unknown): void {
  const text = `${JSON.stringify(body)}\n`;
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function startStream(res: http.ServerResponse, start: (out: StreamOut) => void): void {
  res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' });
  res.flushHeaders();
  const closers: (() => void)[] = [];
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    for (const f of closers) f();
  };
  res.on('close', close);
  start({
    write(doc) {
      if (!closed) res.write(`${JSON.stringify(doc)}\n`);
    },
    end() {
      res.end();
      close();
    },
    onClose(fn) {
      if (closed) fn();
      else closers.push(fn);
    },
  });
}

/** Whether something answers on the unix socket `path`. */
export function socketAlive(path: string, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    if (!existsSync(path)) return resolve(false);
    const s = connect(path);
    const done = (alive: boolean) => {
      clearTimeout(timer);
      s.destroy();
      resolve(alive);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    s.on('connect', () => done(true));
    s.on('error', () => done(false));
  });
}

export class ApiServer {
  private readonly server: http.Server;
  private readonly routes = new Map<string, Route>();

  constructor(routes: readonly Route[], private readonly onError: (route: string, e: ApiError) => void = () => {}) {
    for (const r of routes) this.routes.set(`${r.method} ${r.path}`, r);
    this.server = http.createServer((req, res) => void this.handle(req, res));
    this.server.keepAliveTimeout = 1000;
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://agent');
    const key = `${req.method} ${url.pathname}`;
    try {
      const route = this.routes.get(key);
      if (!route) {
        const known = [...this.routes.keys()].some((k) => k.endsWith(` ${url.pathname}`));
        throw known
          ? new ApiError(405, 'invalid_request', `${req.method} is not allowed on ${url.pathname}`)
          : new ApiError(404, 'not_found', `no such API: ${req.method} ${url.pathname}`);
      }
      if ('stream' in route) {
        const start = route.stream(url.searchParams);
        startStream(res, start);
        return;
      }
      const body = req.method === 'POST' ? await readBody(req) : undefined;
      send(res, 200, (await route.handler(body, url.searchParams)) ?? {});
    } catch (e) {
      const err = apiError(e);
      this.onError(key, err);
      const body: ApiErrorBody = { error: { code: err.code, message: err.message, ...(err.details ? { details: err.details } : {}) } };
      if (!res.headersSent) send(res, err.status, body);
    }
  }

  /**
   * Listens on `path`, mode 0600 and owned by the agent's user (root): only root may ask
   * the agent to add pods. Replaces a stale socket file, refuses a live one. The socket is
   * bound under umask 0177, so it is never there with a wider mode, not even until the chmod.
   */
  async listen(path: string): Promise<void> {
    if (existsSync(path)) {
      if (await socketAlive(path)) throw new Error(`something already answers on ${path}: is another sluice agent running for this node?`);
      rmSync(path, { force: true });
    }
    const umask = process.umask(0o177);
    try {
      await new Promise<void>((resolve, reject) => {
        this.server.once('error', reject);
        this.server.listen(path, () => {
          this.server.off('error', reject);
          resolve();
        });
      });
    } finally {
      process.umask(umask);
    }
    chmodSync(path, 0o600);
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}
