import type { Command } from 'commander';
import { cleanup, runDemo } from '../../demo/demo.js';

export function register(program: Command): void {
  program.command('demo')
    .description('run a node with three pods in network namespaces and show them talking (cleans up after itself)')
    .option('--keep', 'leave the demo running for exploration')
    .option('--cleanup', 'only remove what an earlier `demo --keep` left')
    .action(async function (this: Command) {
      const o = this.opts<{ keep?: boolean; cleanup?: boolean }>();
      if (o.cleanup) return cleanup([], undefined, false);
      await runDemo({ keep: o.keep });
    });
}
