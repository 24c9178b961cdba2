/** `hangar shell`: an interactive terminal in a machine over the SDK's PTY. */
import type { Command } from 'commander';
import { client } from './config.js';
import { example } from './options.js';

interface ShellOptions {
  cmd?: string;
  workdir?: string;
  user?: string;
}

/**
 * Relay this terminal to the machine's: raw mode (so Ctrl-C, Ctrl-D and arrows go to
 * the machine, not to this process), the window size sent again on every SIGWINCH, and
 * the remote command's exit code as this process's.
 */
async function runShell(id: string, o: ShellOptions): Promise<number> {
  const c = await client();
  const { stdin, stdout } = process;
  const pty = await c.openPty(id, {
    cols: stdout.columns || 80,
    rows: stdout.rows || 24,
    ...(o.cmd ? { cmd: o.cmd } : {}),
    ...(o.workdir ? { cwd: o.workdir } : {}),
    ...(o.user ? { user: o.user } : {}),
  });
  const raw = stdin.isTTY;
  if (raw) stdin.setRawMode(true);
  const onInput = (b: Buffer): void => pty.write(b);
  // Node refreshes stdout's size on SIGWINCH and then emits 'resize'.
  const onResize = (): void => pty.resize(stdout.columns || 80, stdout.rows || 24);
  stdin.on('data', onInput);
  stdin.resume();
  stdout.on('resize', onResize);
  try {
    for await (const chunk of pty) stdout.write(chunk);
    return (await pty.exited).exitCode ?? 1;
  } finally {
    stdout.off('resize', onResize);
    stdin.off('data', onInput);
    if (raw) stdin.setRawMode(false);
    stdin.pause();
  }
}

/** Add the shell verb to the program. */
export function addShellCommand(p: Command): void {
  p.command('shell <id>')
    .description('Open an interactive terminal in a machine (Ctrl-C goes to the machine; exit the shell to leave); exits with its exit code.')
    .option('-c, --cmd <command>', 'run this (with /bin/sh -c) instead of a login shell')
    .option('-w, --workdir <dir>', 'working directory inside the machine')
    .option('-u, --user <user>', 'user inside the machine')
    .addHelpText('after', example('hangar shell mch_abc', 'hangar shell mch_abc --cmd htop'))
    .action(async (id: string, o: ShellOptions) => {
      process.exitCode = await runShell(id, o);
    });
}
