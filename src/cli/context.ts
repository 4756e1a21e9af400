/** What every command needs: the resolved config from --config and the config flags. */
import type { Command } from 'commander';
import { CONFIG_ENV, KEYS, type Config } from '../config/config.js';
import { loadConfig } from '../config/load.js';
import { requireNodeNetns } from '../config/netns-guard.js';

export function addConfigOptions(cmd: Command): Command {
  cmd.option('-c, --config <file>', `config file (default $${CONFIG_ENV}, else /etc/sluice/config.yaml if present)`);
  for (const [, k] of Object.entries(KEYS)) cmd.option(`${k.flag} <value>`, k.help);
  return cmd;
}

function camel(flag: string): string {
  return flag.replace(/^--/, '').replace(/-([a-z])/g, (_, ch: string) => ch.toUpperCase());
}

/**
 * The config for a command: the root program's options merged into a Config. A config
 * that names the node's network namespace is refused outside it.
 */
export function configOf(cmd: Command): Config {
  const opts = cmd.optsWithGlobals<Record<string, unknown>>();
  const flags: Partial<Record<keyof Config, unknown>> = {};
  for (const [key, k] of Object.entries(KEYS)) {
    const v = opts[camel(k.flag)];
    if (v !== undefined) flags[key as keyof Config] = v;
  }
  const file = (opts.config as string | undefined) ?? (process.env[CONFIG_ENV] || undefined);
  const cfg = loadConfig(file, flags);
  requireNodeNetns(cfg, file);
  return cfg;
}
