/** Where the CLI finds its server and key: environment first, then the file `hangar login` wrote. */
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { HangarClient } from '../../sdk/src/index.js';

/** A mistake of the caller's: the CLI exits with 2 and says what to fix. */
export class UsageError extends Error {}

/** The saved settings. */
export interface Config {
  url: string;
  apiKey: string;
}

/** $XDG_CONFIG_HOME/hangar/config.json (default ~/.config). */
export const configPath = (): string => join(process.env.XDG_CONFIG_HOME || join(homedir(), '.config'), 'hangar', 'config.json');

/** The settings in force: HANGAR_URL and HANGAR_API_KEY override the saved file. */
export async function config(): Promise<Config> {
  const saved = await readFile(configPath(), 'utf8').then(
    (t) => JSON.parse(t) as Partial<Config>,
    () => ({}) as Partial<Config>,
  );
  const url = process.env.HANGAR_URL ?? saved.url ?? 'http://127.0.0.1:8080';
  const apiKey = process.env.HANGAR_API_KEY ?? saved.apiKey;
  if (!apiKey) throw new UsageError('no API key: run `hangar login --url URL --key KEY`, or set HANGAR_API_KEY');
  return { url, apiKey };
}

/** Save the settings, readable by the user only (0600 in a 0700 directory). */
export async function saveConfig(c: Config): Promise<void> {
  await mkdir(dirname(configPath()), { recursive: true, mode: 0o700 });
  await writeFile(configPath(), JSON.stringify(c), { mode: 0o600 });
  await chmod(configPath(), 0o600);
}

/** A client for the settings in force. */
export async function client(): Promise<HangarClient> {
  const c = await config();
  return new HangarClient({ baseUrl: c.url, apiKey: c.apiKey });
}
