/** Reads the config file (an explicit --config must exist; the default path may not). */
import { existsSync, readFileSync } from 'node:fs';
import { DEFAULT_CONFIG_PATH, parseConfigText, resolveConfig, type Config } from './config.js';

export function loadConfig(path: string | undefined, flags: Partial<Record<keyof Config, unknown>>): Config {
  const file = path ?? (existsSync(DEFAULT_CONFIG_PATH) ? DEFAULT_CONFIG_PATH : undefined);
  if (!file) return resolveConfig({}, flags);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new Error(`cannot read config ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  return resolveConfig(parseConfigText(text, file), flags, file);
}
