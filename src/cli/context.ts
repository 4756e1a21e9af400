/** What every command needs: the resolved config from --config and the config flags. */
import type { Command } from 'commander';
import { KEYS, type Config } from '../config/config.js';
import { loadConfig } from '../config/load.js';

export function addConfigOptions(cmd: Command): Command {
  cmd.option('-c, --config <file>', 'config file (default /etc/sluice/config.yaml if present)');
  for (const [, k] of Object.entries(KEYS)) cmd.option(`${k.flag} <value>`, k.help);
  return cmd;
}

function camel(flag: string): string {
  return flag.replace(/^--/, '').replace(/-([a-z])/g, (_, ch: string) => ch.toUpperCase());
}

/** The config for a command: the root program's options merged into a Config. */
export function configOf(cmd: Command): Config {
  const opts = cmd.optsWithGlobals<Record<string, unknown>>();
  const flags: Partial<Record<keyof Config, unknown>> = {};
  for (const [key, k] of Object.entries(KEYS)) {
    const v = opts[camel(k.flag)];
    if (v !== undefined) flags[key as keyof Config] = v;
  }
  return loadConfig(opts.config as string | undefined, flags);
}
