#!/usr/bin/env node
/**
 * `hangar`: the command line over the SDK. One verb per action, human tables by default
 * and `--json` for scripts. Exit codes: 0 ok, 1 the server refused or failed (the message
 * says what to fix), 2 bad usage, 3 the server could not be reached; `exec` and `shell`
 * pass the command's own exit code through.
 */
import { Command, CommanderError } from 'commander';
import { HangarApiError, HangarConnectionError, HangarTimeoutError } from '../../sdk/src/index.js';
import { addCatalogCommands } from './catalog-commands.js';
import { addCompletionCommand } from './completion.js';
import { UsageError } from './config.js';
import { addIoCommands } from './io-commands.js';
import { addMachineCommands } from './machine-commands.js';
import { addServerCommands } from './server-commands.js';
import { addShellCommand } from './shell.js';

/** The whole command tree. */
export function program(): Command {
  const p = new Command('hangar')
    .description('Hangar machines from the command line.')
    .version('0.1.0')
    .configureOutput({ writeErr: (s) => process.stderr.write(s) })
    .exitOverride()
    .showSuggestionAfterError();
  addMachineCommands(p);
  addIoCommands(p);
  addShellCommand(p);
  addCatalogCommands(p);
  addCompletionCommand(p);
  addServerCommands(p);
  // Subcommands (templates ls, …) report usage errors the same way as the verbs.
  const inherit = (c: Command): void => {
    for (const s of c.commands) {
      s.exitOverride().showSuggestionAfterError();
      inherit(s);
    }
  };
  inherit(p);
  return p;
}

/** Run the CLI; resolves with the exit code. */
export async function main(argv: string[]): Promise<number> {
  try {
    await program().parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    if (err instanceof UsageError) {
      process.stderr.write(`hangar: ${err.message}\n`);
      return 2;
    }
    if (err instanceof HangarApiError) {
      process.stderr.write(`hangar: ${err.message} (${err.code})\n`);
      return 1;
    }
    if (err instanceof HangarConnectionError || err instanceof HangarTimeoutError) {
      process.stderr.write(`hangar: ${err.message}; is the server running? (hangar login --url …)\n`);
      return 3;
    }
    process.stderr.write(`hangar: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}

if (process.argv[1] && /hangar(\.js)?$/.test(process.argv[1])) {
  process.exitCode = await main(process.argv.slice(2));
}
