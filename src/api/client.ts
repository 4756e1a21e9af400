/**
 * A small JSON client for the sluice agent's HTTP API (types.ts) on a unix socket (node:http with
 * `socketPath`). One request per connection (no keep-alive), so a short-lived plugin
 * process exits as soon as it is done. Every failure is one of four errors:
 * AgentUnreachableError (nothing answers on the socket), AgentTimeoutError,
 * AgentHttpError (the agent answered non-2xx, with its {error: {code, message}}) and
 * AgentProtocolError (the answer is not JSON, or the connection broke mid-answer).
 */
import http from 'node:http';

/** Nothing answered on the socket (missing socket file, refused, permission denied…). */
export class AgentUnreachableError extends Error {
  constructor(readonly socket: string, readonly error: NodeJS.ErrnoException) {
    super(`cannot reach the sluice agent at ${socket}: is it running?`);
    this.name = 'AgentUnreachableError';
  }

  /** The underlying error, e.g. "connect ENOENT /run/sluice/agent.sock". */
  get details(): string {
    const hint = this.error.code === 'EACCES' || this.error.code === 'EPERM' ? ' (permission denied: the plugin runs as root under a runtime)' : '';
    return `${this.error.message}${hint}`;
  }
}

export class AgentTimeoutError extends Error {
  constructor(readonly socket: string, readonly method: string, readonly path: string, readonly timeoutMs: number) {
    super(`the sluice agent at ${socket} did not answer ${method} ${path} within ${timeoutMs / 1000}s`);
    this.name = 'AgentTimeoutError';
  }
}

/** The agent answered with a non-2xx status. */
export class AgentHttpError extends Error {
  constructor(
    readonly status: number,
    /** The agent's error code ("not_ready", "unknown_container", …), or "http_<status>" without one. */
    readonly code: string,
    message: string,
    readonly details?: string,
  ) {
    super(message);
    this.name = 'AgentHttpError';
  }
}

/** The agent's answer is not what the protocol says (not JSON, cut short). */
export class AgentProtocolError extends Error {
  constructor(message: string, readonly details?: string) {
    super(message);
    this.name = 'AgentProtocolError';
  }
}

export type AgentError = AgentUnreachableError | AgentTimeoutError | AgentHttpError | AgentProtocolError;

export interface ClientOptions {
  /** Whole-request deadline (connect + answer). Default 60 s. */
  timeoutMs?: number;
  /** Largest answer accepted. Default 4 MiB. */
  maxBytes?: number;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The {error: {code, message, details?}} of a non-2xx answer, or a stand-in when it has none. */
function httpError(status: number, text: string): AgentHttpError {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch { /* not JSON */ }
  const e = isObject(body) && isObject(body.error) ? body.error : undefined;
  if (e && typeof e.message === 'string') {
    return new AgentHttpError(status, typeof e.code === 'string' && e.code ? e.code : `http_${status}`, e.message,
      typeof e.details === 'string' && e.details ? e.details : undefined);
  }
  const snippet = text.trim().slice(0, 300);
  return new AgentHttpError(status, `http_${status}`, `the sluice agent answered HTTP ${status}${snippet ? `: ${snippet}` : ''}`);
}

export class AgentClient {
  readonly timeoutMs: number;
  readonly maxBytes: number;

  constructor(readonly socket: string, opts: ClientOptions = {}) {
    this.timeoutMs = opts.timeoutMs ?? 60_000;
    this.maxBytes = opts.maxBytes ?? 4 << 20;
  }

  /** Sends one request; resolves to the parsed JSON answer of a 2xx (undefined for an empty one). */
  request(method: 'GET' | 'POST', path: string, body?: unknown): Promise<unknown> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    return new Promise((resolve, reject) => {
      let settled = false;
      let answered = false;
      const finish = (err: Error | undefined, value?: unknown) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (err) reject(err);
        else resolve(value);
      };
      const req = http.request({
        socketPath: this.socket,
        method,
        path,
        agent: false,
        headers: {
          host: 'sluice-agent',
          accept: 'application/json',
          connection: 'close',
          'user-agent': 'sluice-cni',
          ...(payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {}),
        },
      });
      const timer = setTimeout(() => {
        const err = new AgentTimeoutError(this.socket, method, path, this.timeoutMs);
        finish(err);
        req.destroy(err);
      }, this.timeoutMs);
      req.on('error', (err: NodeJS.ErrnoException) => {
        if (answered) finish(new AgentProtocolError(`the connection to the sluice agent at ${this.socket} broke during its answer`, err.message));
        else finish(new AgentUnreachableError(this.socket, err));
      });
      req.on('response', (res) => {
        answered = true;
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > this.maxBytes) {
            finish(new AgentProtocolError(`the sluice agent's answer to ${method} ${path} is larger than ${this.maxBytes} bytes`));
            res.destroy();
            return;
          }
          chunks.push(c);
        });
        res.on('error', (err) => finish(new AgentProtocolError(`the connection to the sluice agent at ${this.socket} broke during its answer`, err.message)));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          const status = res.statusCode ?? 0;
          if (status < 200 || status > 299) return finish(httpError(status, text));
          if (text.trim() === '') return finish(undefined, undefined);
          try {
            finish(undefined, JSON.parse(text));
          } catch (e) {
            finish(new AgentProtocolError(`the sluice agent's answer to ${method} ${path} is not JSON`,
              `${(e as Error).message}; answer: ${text.slice(0, 300)}`));
          }
        });
      });
      req.end(payload);
    });
  }

  /**
   * GET on a streaming API (one JSON document per line): `onLine` gets each as it comes.
   * Resolves when the agent ends the stream or `signal` aborts; no timeout applies once
   * the answer has started (a stream may be quiet for long).
   */
  stream(path: string, onLine: (doc: unknown) => void, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      let settled = false;
      const finish = (err?: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (err) reject(err);
        else resolve();
      };
      const req = http.request({
        socketPath: this.socket, method: 'GET', path, agent: false,
        headers: { host: 'sluice-agent', accept: 'application/x-ndjson', 'user-agent': 'sluice-cli' },
      });
      const timer = setTimeout(() => {
        const err = new AgentTimeoutError(this.socket, 'GET', path, this.timeoutMs);
        finish(err);
        req.destroy(err);
      }, this.timeoutMs);
      signal?.addEventListener('abort', () => {
        finish();
        req.destroy();
      }, { once: true });
      req.on('error', (err: NodeJS.ErrnoException) => finish(settled ? undefined : new AgentUnreachableError(this.socket, err)));
      req.on('response', (res) => {
        clearTimeout(timer);
        const status = res.statusCode ?? 0;
        let buf = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          buf += d;
          if (status < 200 || status > 299) return;
          let i: number;
          while ((i = buf.indexOf('\n')) >= 0) {
            const line = buf.slice(0, i).trim();
            buf = buf.slice(i + 1);
            if (!line) continue;
            try {
              onLine(JSON.parse(line));
            } catch (e) {
              finish(e instanceof SyntaxError ? new AgentProtocolError(`a line of the agent's stream ${path} is not JSON`, line.slice(0, 300)) : (e as Error));
              req.destroy();
              return;
            }
          }
        });
        res.on('error', (err) => finish(new AgentProtocolError(`the sluice agent's stream ${path} broke`, err.message)));
        res.on('end', () => finish(status < 200 || status > 299 ? httpError(status, buf) : undefined));
      });
      req.end();
    });
  }

  post(path: string, body: unknown): Promise<unknown> {
    return this.request('POST', path, body);
  }

  get(path: string): Promise<unknown> {
    return this.request('GET', path);
  }
}
