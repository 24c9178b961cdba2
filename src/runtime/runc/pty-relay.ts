import { access, constants } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

/**
 * Where `npm run build` puts the terminal relay (`pty-relay.c`, a small C program that
 * receives the pty master runc sends and copies bytes both ways; its header says how):
 * beside this module in dist/, so a built tree finds it wherever it is installed.
 */
export const DEFAULT_PTY_RELAY_PATH: string = fileURLToPath(new URL('./pty-relay', import.meta.url));

/** Why the relay at `path` cannot run, in words that say how to fix it; null when it can. */
export async function ptyRelayProblem(path: string): Promise<string | null> {
  try {
    await access(path, constants.X_OK);
    return null;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const what = code === 'ENOENT' ? 'is missing' : `cannot be run (${code ?? String(err)})`;
    return `the terminal relay ${path} ${what}: run \`npm run build\`, which compiles src/runtime/runc/pty-relay.c (needs cc: apt-get install gcc libc6-dev)`;
  }
}
