/**
 * The sluice CNI plugin: a runtime runs it with CNI_* in the environment and the network
 * configuration on stdin; it asks the node's sluice agent (HTTP+JSON on a unix socket)
 * to do the work and prints the result, or a CNI error object, on stdout. Exit code 0 on
 * success, 1 on any failure. stdout carries nothing else; diagnostics (SLUICE_CNI_DEBUG=1)
 * go to stderr.
 */
import {
  AgentClient, AgentHttpError, AgentProtocolError, AgentTimeoutError, AgentUnreachableError,
} from '../api/client.js';
import type { AgentEndpoint } from '../api/types.js';
import {
  CniError, ErrorCode, LATEST_VERSION, buildAddResult, comparePrevResult, errorObject, parseCniArgs, parseNetConf,
  parsePrevResult, readEnv, requestedVersion, validateAddResponse, validateEndpoint, versionResult, SUPPORTED_VERSIONS,
  type CniCommand, type CniEnv, type NetConf,
} from './spec.js';

export interface RunOutput {
  exitCode: number;
  /** Exactly what goes to stdout: a result, an error object, or nothing. */
  stdout: string;
  /** Diagnostics. */
  stderr: string;
}

export interface RunOptions {
  /** Makes the agent client (tests). */
  client?: (socket: string, timeoutMs: number) => AgentClient;
  debug?: boolean;
}

/** How long each command waits for the agent unless the config says `timeoutSeconds`. */
const TIMEOUT_MS: Record<CniCommand, number> = {
  ADD: 60_000, DEL: 60_000, CHECK: 60_000, GC: 60_000, STATUS: 10_000, VERSION: 0,
};

/** Agent error codes a runtime should retry. */
const RETRYABLE = new Set(['not_ready', 'busy', 'try_again', 'unavailable']);

const ABOUT = `sluice CNI plugin (CNI spec ${SUPPORTED_VERSIONS.join(', ')}): a container runtime runs it with CNI_COMMAND, `
  + 'CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME in the environment and the network configuration on stdin';

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** An agent's non-2xx answer as a CNI error: its message is the msg, its code decides the CNI code. */
function fromAgentHttp(command: CniCommand, e: AgentHttpError): CniError {
  const details = `sluice agent error ${e.code} (HTTP ${e.status})${e.details ? `: ${e.details}` : ''}`;
  if (command === 'STATUS') return new CniError(ErrorCode.NotAvailable, `the sluice agent is not available: ${e.message}`, details);
  if (RETRYABLE.has(e.code) || e.status === 503) return new CniError(ErrorCode.TryAgainLater, e.message, details);
  if (e.code === 'unknown_container') return new CniError(ErrorCode.UnknownContainer, e.message, details);
  if (e.code === 'invalid_request') return new CniError(ErrorCode.InvalidEnvironment, e.message, details);
  return new CniError(ErrorCode.AgentFailure, e.message, details);
}

/** Any failure as the CNI error the runtime sees. */
export function toCniError(command: CniCommand | undefined, e: unknown): CniError {
  if (e instanceof CniError) return e;
  const unavailable = command === 'STATUS' ? ErrorCode.NotAvailable : ErrorCode.TryAgainLater;
  if (e instanceof AgentUnreachableError) return new CniError(unavailable, e.message, e.details);
  if (e instanceof AgentTimeoutError) {
    return new CniError(unavailable, e.message, 'the agent may be overloaded or stuck; see its log (journalctl -u sluice-agent)');
  }
  if (e instanceof AgentHttpError) return fromAgentHttp(command ?? 'ADD', e);
  if (e instanceof AgentProtocolError) return new CniError(ErrorCode.AgentProtocol, e.message, e.details);
  const err = e instanceof Error ? e : new Error(String(e));
  return new CniError(ErrorCode.AgentFailure, `internal error in the sluice CNI plugin: ${err.message}`);
}

function protocol(what: string, body: unknown): CniError {
  return new CniError(ErrorCode.AgentProtocol, `the sluice agent's answer is not what the plugin expects: ${what}`,
    `answer: ${JSON.stringify(body)?.slice(0, 500)}`);
}

interface Ctx {
  env: CniEnv;
  conf: NetConf;
  agent: AgentClient;
  log: (msg: string) => void;
}

async function cmdAdd({ env, conf, agent }: Ctx): Promise<string> {
  const args = parseCniArgs(env.args);
  const body: Record<string, unknown> = { containerId: env.containerId, ifname: env.ifname, netns: env.netns };
  if (args.podNamespace) body.podNamespace = args.podNamespace;
  if (args.podName) body.podName = args.podName;
  if (Object.keys(conf.labels).length > 0) body.labels = conf.labels;
  const answer = await agent.post('/v1/cni/add', body);
  const r = validateAddResponse(answer);
  if (r.endpoint.ifname !== env.ifname) throw protocol(`it made interface ${r.endpoint.ifname}, not ${env.ifname}`, answer);
  // A prevResult on ADD (sluice chained after another interface plugin) is replaced: sluice
  // makes the pod's interface itself.
  const result = buildAddResult(conf.cniVersion, {
    ifname: env.ifname!, netns: env.netns!, ip: r.endpoint.ip, mac: r.endpoint.mac, gateway: r.gateway,
    mtu: r.endpoint.mtu, ...(conf.dns ? { dns: conf.dns } : {}),
  });
  return JSON.stringify(result);
}

async function cmdDel({ env, agent, log }: Ctx): Promise<string> {
  const body: Record<string, unknown> = { containerId: env.containerId, ifname: env.ifname };
  if (env.netns) body.netns = env.netns;
  try {
    const answer = await agent.post('/v1/cni/del', body);
    if (!isObject(answer) || typeof answer.deleted !== 'boolean') throw protocol('no "deleted" boolean', answer);
    log(`DEL ${env.containerId}/${env.ifname}: ${answer.deleted ? 'deleted' : 'already gone'}`);
  } catch (e) {
    // DEL is idempotent: an endpoint the agent does not know is already deleted.
    if (e instanceof AgentHttpError && e.code === 'unknown_container') return '';
    throw e;
  }
  return '';
}

async function cmdCheck({ env, conf, agent }: Ctx): Promise<string> {
  const prev = conf.prevResult === undefined ? undefined : parsePrevResult(conf.prevResult);
  const answer = await agent.post('/v1/cni/check', { containerId: env.containerId, ifname: env.ifname, netns: env.netns });
  if (!isObject(answer) || typeof answer.ok !== 'boolean') throw protocol('no "ok" boolean', answer);
  const problems: string[] = [];
  if (!answer.ok) {
    const p = answer.problems;
    if (!Array.isArray(p) || p.some((x) => typeof x !== 'string')) throw protocol('"problems" is not a list of strings', answer);
    problems.push(...(p as string[]));
    if (problems.length === 0) problems.push('the agent reports the endpoint is not as expected');
  }
  let endpoint: AgentEndpoint | undefined;
  if (answer.endpoint !== undefined && answer.endpoint !== null) endpoint = validateEndpoint(answer.endpoint, answer);
  if (prev) {
    problems.push(...comparePrevResult(prev, { ifname: env.ifname!, netns: env.netns!, ...(endpoint ? { endpoint } : {}) }));
  }
  if (problems.length > 0) {
    throw new CniError(ErrorCode.CheckFailed, `interface ${env.ifname} of container ${env.containerId} is not as expected`,
      problems.join('; '));
  }
  return '';
}

async function cmdStatus({ agent }: Ctx): Promise<string> {
  const answer = await agent.get('/v1/status');
  if (!isObject(answer) || typeof answer.ready !== 'boolean') throw protocol('no "ready" boolean', answer);
  if (!answer.ready) {
    const reason = typeof answer.reason === 'string' && answer.reason ? answer.reason : 'no reason given';
    throw new CniError(ErrorCode.NotAvailable, `the sluice agent is not ready: ${reason}`);
  }
  return '';
}

async function cmdGc({ conf, agent, log }: Ctx): Promise<string> {
  if (conf.validAttachments === undefined) {
    throw new CniError(ErrorCode.InvalidNetworkConfig, 'GC needs cni.dev/valid-attachments in the network configuration',
      'without the list of valid attachments sluice cannot tell stale endpoints from live ones');
  }
  const answer = await agent.post('/v1/cni/gc', { validAttachments: conf.validAttachments });
  if (!isObject(answer) || !Array.isArray(answer.removed)) throw protocol('no "removed" list', answer);
  log(`GC: the agent removed ${answer.removed.length} stale attachment(s)`);
  return '';
}

const HANDLERS: Record<Exclude<CniCommand, 'VERSION'>, (ctx: Ctx) => Promise<string>> = {
  ADD: cmdAdd, DEL: cmdDel, CHECK: cmdCheck, STATUS: cmdStatus, GC: cmdGc,
};

/**
 * Runs one plugin invocation: `env` is the process environment, `stdin` what the runtime
 * wrote (undefined when stdin could not be read). Never throws.
 */
export async function run(env: Record<string, string | undefined>, stdin: string | undefined, opts: RunOptions = {}): Promise<RunOutput> {
  const debug = opts.debug ?? /^(1|true|yes)$/i.test(env.SLUICE_CNI_DEBUG ?? '');
  const err: string[] = [];
  const log = (m: string) => {
    if (debug) err.push(`sluice-cni: ${m}\n`);
  };
  let version: string = requestedVersion(stdin) ?? LATEST_VERSION;
  let command: CniCommand | undefined;
  try {
    if (!env.CNI_COMMAND) err.push(`${ABOUT}\n`);
    const e = readEnv(env);
    command = e.command;
    if (command === 'VERSION') {
      let asked: unknown;
      try {
        const v = JSON.parse(stdin ?? '') as unknown;
        if (isObject(v)) asked = v.cniVersion;
      } catch { /* VERSION works without input */ }
      return { exitCode: 0, stdout: `${JSON.stringify(versionResult(asked))}\n`, stderr: err.join('') };
    }
    if (stdin === undefined) throw new CniError(ErrorCode.IoFailure, 'cannot read the network configuration from stdin');
    const conf = parseNetConf(stdin, command);
    version = conf.cniVersion;
    const timeoutMs = conf.timeoutSeconds !== undefined ? Math.round(conf.timeoutSeconds * 1000) : TIMEOUT_MS[command];
    const agent = opts.client ? opts.client(conf.socket, timeoutMs) : new AgentClient(conf.socket, { timeoutMs });
    log(`${command} container=${e.containerId ?? '-'} ifname=${e.ifname ?? '-'} netns=${e.netns ?? '-'} agent=${conf.socket} cniVersion=${version}`);
    const out = await HANDLERS[command]({ env: e, conf, agent, log });
    return { exitCode: 0, stdout: out ? `${out}\n` : '', stderr: err.join('') };
  } catch (x) {
    const ce = toCniError(command, x);
    log(`${command ?? 'command'} failed: code ${ce.code}: ${ce.message}${ce.details ? ` (${ce.details})` : ''}`);
    if (debug && !(x instanceof CniError) && x instanceof Error && x.stack) err.push(`${x.stack}\n`);
    return { exitCode: 1, stdout: `${JSON.stringify(errorObject(version, ce))}\n`, stderr: err.join('') };
  }
}

/** Reads all of stdin (nothing when it is a terminal, so a person running the plugin is not left waiting). */
async function readStdin(): Promise<string> {
  if (process.stdin.isTTY) return '';
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(typeof c === 'string' ? Buffer.from(c) : (c as Buffer));
  return Buffer.concat(chunks).toString('utf8');
}

function write(stream: NodeJS.WriteStream, text: string): Promise<void> {
  if (!text) return Promise.resolve();
  return new Promise((resolve) => stream.write(text, () => resolve()));
}

/** The executable's main: returns the exit code (bin/sluice-cni.js sets process.exitCode). */
export async function main(): Promise<number> {
  // Last resort: whatever escapes still ends as a CNI error object, never a stack trace on stdout.
  process.on('uncaughtException', (e) => {
    const ce = toCniError(undefined, e);
    process.stdout.write(`${JSON.stringify(errorObject(LATEST_VERSION, ce))}\n`);
    process.exit(1);
  });
  let stdin: string | undefined;
  try {
    stdin = await readStdin();
  } catch {
    stdin = undefined;
  }
  const r = await run(process.env, stdin);
  await write(process.stderr, r.stderr);
  await write(process.stdout, r.stdout);
  return r.exitCode;
}
