import { AsyncLocalStorage } from 'node:async_hooks';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { setPriority } from 'node:os';

/** Niceness of the short host commands run for background work (see `inBackground`). */
export const BACKGROUND_NICENESS = 10;

const background = new AsyncLocalStorage<boolean>();

/**
 * Run `fn` as background work: every `run`/`runWithInput` command it starts gets
 * niceness `BACKGROUND_NICENESS`, so on a busy host the foreground (answering requests)
 * gets the CPU first. `runDetached` (runc run/restore, whose children become the
 * machine) is left alone: a machine's processes never inherit the lower priority.
 */
export function inBackground<T>(fn: () => Promise<T>): Promise<T> {
  return background.run(true, fn);
}

/** Lower a just-started command's priority when it belongs to background work. */
function deprioritise(child: ChildProcess): void {
  if (background.getStore() !== true || child.pid === undefined) return;
  try {
    setPriority(child.pid, BACKGROUND_NICENESS);
  } catch {
    // Already exited: nothing to lower.
  }
}

/** A host command that exited non-zero, with what it printed. */
export class CommandError extends Error {
  constructor(
    readonly command: string,
    readonly exitCode: number | null,
    readonly stderr: string,
  ) {
    super(`${command} failed (exit ${exitCode ?? 'signal'}): ${stderr.trim().split('\n').slice(-3).join(' | ')}`);
    this.name = 'CommandError';
  }
}

/** Run a host command without a shell; resolves with stdout, rejects with CommandError. */
export function run(file: string, args: readonly string[], timeoutMs = 30_000): Promise<string> {
  return execute(file, args, timeoutMs, undefined);
}

/** Run a host command with `input` on its stdin (`ip -batch -`, `iptables-restore`); like `run` otherwise. */
export function runWithInput(file: string, args: readonly string[], input: string, timeoutMs = 30_000): Promise<string> {
  return execute(file, args, timeoutMs, input);
}

function execute(file: string, args: readonly string[], timeoutMs: number, input: string | undefined): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(file, args, { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err) {
        const code = typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : null;
        reject(new CommandError(`${file} ${args.join(' ')}`, code, stderr || err.message));
        return;
      }
      resolve(stdout);
    });
    // Before any input is written: a command reading its stdin first already runs at the lower priority.
    deprioritise(child);
    if (input !== undefined) child.stdin?.end(input);
  });
}

/**
 * Run a command whose children outlive it (`runc run --detach`, `runc restore`): its
 * stdio goes to /dev/null, since a pipe would be inherited by the machine and never
 * close. Errors are read from `logFile`, where the command was told to write them.
 * It runs in its own process group, killed whole when `timeoutMs` passes (a CRIU
 * restore of a damaged image can spin forever).
 */
export function runDetached(file: string, args: readonly string[], logFile: string, timeoutMs = 60_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: 'ignore', detached: true });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }, timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new CommandError(`${file} ${args.join(' ')}`, null, err.message));
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (code === 0 && !timedOut) {
        resolve();
        return;
      }
      // Ends in reject either way; a log that cannot be read only makes the message vaguer.
      void readFile(logFile, 'utf8')
        .catch(() => '')
        .then((log) => {
          const why = timedOut ? `timed out after ${timeoutMs} ms and was killed` : lastLogMessages(log);
          reject(new CommandError(`${file} ${args.join(' ')}`, code, why));
        });
    });
  });
}

/** The messages of the last lines of a JSON-lines log (runc --log-format json). */
function lastLogMessages(log: string): string {
  return log
    .trim()
    .split('\n')
    .slice(-3)
    .map((line) => {
      try {
        return String((JSON.parse(line) as { msg?: unknown }).msg ?? line);
      } catch {
        return line;
      }
    })
    .join('\n');
}
