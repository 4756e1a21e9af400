/** The `sluice` command line. Commands are thin: each calls one module and prints. */
import { Command, CommanderError } from 'commander';
import { readFileSync } from 'node:fs';
import { PACKAGE_ROOT } from '../datapath/paths.js';
import { addConfigOptions } from './context.js';
import { register as registerAgent } from './commands/agent.js';
import { register as registerBpf } from './commands/bpf.js';
import { register as registerDemo } from './commands/demo.js';
import { register as registerEndpoint } from './commands/endpoint.js';
import { register as registerLab } from './commands/lab.js';
import { register as registerMonitor } from './commands/monitor.js';
import { register as registerStatus } from './commands/status.js';
import { register as registerNode } from './commands/node.js';
import { register as registerPolicy } from './commands/policy.js';
import { register as registerPrefilter } from './commands/prefilter.js';
import { register as registerService } from './commands/service.js';

function version(): string {
  return (JSON.parse(readFileSync(`${PACKAGE_ROOT}/package.json`, 'utf8')) as { version: string }).version;
}

export function buildProgram(): Command {
  const program = new Command('sluice')
    .description('eBPF container networking: pod datapath, IPAM and NetworkPolicy in tc/XDP programs')
    .version(version())
    .showHelpAfterError('(add --help for usage)')
    .configureOutput({ outputError: (text, write) => write(`sluice: ${text}`) })
    .exitOverride();
  addConfigOptions(program);
  registerNode(program);
  registerEndpoint(program);
  registerAgent(program);
  registerPolicy(program);
  registerService(program);
  registerBpf(program);
  registerPrefilter(program);
  registerMonitor(program);
  registerStatus(program);
  registerDemo(program);
  registerLab(program);
  return program;
}

/**
 * A reader that goes away (`sluice bpf ct | head`) ends the output, not the process with a
 * stack trace: the rest is not wanted. Exits as a shell's own tools do on SIGPIPE (141).
 */
function quietOnClosedStdout(): void {
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(141);
    throw e;
  });
}

export async function main(argv: string[]): Promise<number> {
  quietOnClosedStdout();
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode;
    const err = e as Error;
    process.stderr.write(`sluice: error: ${err.message}\n`);
    if (process.env.SLUICE_DEBUG) process.stderr.write(`${err.stack}\n`);
    return 1;
  }
}
