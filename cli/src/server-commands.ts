/**
 * `hangar serve`, `hangar agent`, `hangar api`: run a Hangar server in the foreground, as
 * the role says (one server that is everything; a host of a fleet; an API server of a
 * fleet). The server is its own program beside the CLI (`dist/src/main.js`, not imported:
 * the CLI stays a client of the SDK); signals are passed on and its exit code is the CLI's.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { example } from './options.js';

/** The server program, beside the CLI in the built tree. */
const SERVER_MAIN = fileURLToPath(new URL('../../src/main.js', import.meta.url));

const ROLES: Array<[role: string, what: string, env: string]> = [
  ['serve', 'Run one Hangar server that is everything (SQLite by default, or HANGAR_DATABASE_URL).', 'HANGAR_DATA_DIR=/var/lib/hangar hangar serve'],
  ['agent', 'Run a host of a fleet: it runs machines, registers with the shared PostgreSQL (HANGAR_DATABASE_URL) and heartbeats.', 'HANGAR_DATABASE_URL=postgres://… HANGAR_HOST_CAPACITY=200 hangar agent'],
  ['api', 'Run an API server of a fleet: it runs no machine (no runc or privilege needed) and forwards each request to the host it concerns.', 'HANGAR_DATABASE_URL=postgres://… hangar api'],
];

/** Run the server as `role` until it exits; resolves with its exit code. */
export function runServer(role: string, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const child = spawn(process.execPath, [SERVER_MAIN, role], { stdio: 'inherit', env });
  const pass = (signal: NodeJS.Signals) => () => child.kill(signal);
  const handlers = (['SIGINT', 'SIGTERM', 'SIGHUP'] as const).map((s) => [s, pass(s)] as const);
  for (const [s, h] of handlers) process.on(s, h);
  return new Promise((resolve) => {
    child.once('error', (err) => {
      process.stderr.write(`hangar: could not start the server (${SERVER_MAIN}): ${err.message}\n`);
      resolve(1);
    });
    child.once('exit', (code, signal) => {
      for (const [s, h] of handlers) process.off(s, h);
      resolve(code ?? (signal === 'SIGINT' || signal === 'SIGTERM' ? 0 : 1));
    });
  });
}

export function addServerCommands(p: Command): void {
  for (const [role, what, usage] of ROLES) {
    p.command(role)
      .description(what)
      .addHelpText('after', example(usage, 'Settings are HANGAR_* variables: see docs/configuration.md.'))
      .action(async () => {
        process.exitCode = await runServer(role);
      });
  }
}
