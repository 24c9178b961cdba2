import { AsyncLocalStorage } from 'node:async_hooks';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
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
 * restore of a damaged image can spin forever), or when one of its children has died and
 * it has not reaped it within `ORPHANED_WAIT_MS`: a `runc restore` whose CRIU was killed
 * after making the machine's processes waits on a socket those processes keep open, and
 * would otherwise notice nothing until the timeout.
 */
export function runDetached(file: string, args: readonly string[], logFile: string, timeoutMs = 60_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: 'ignore', detached: true });
    let killedFor: string | null = null;
    const killGroup = (why: string) => {
      killedFor ??= why;
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    };
    const timer = setTimeout(() => killGroup(`timed out after ${timeoutMs} ms and was killed`), timeoutMs);
    const watch = child.pid === undefined ? null : watchUnreapedChildren(child.pid, (dead) => killGroup(`its child ${dead} died and it did not notice; killed`));
    const stop = () => {
      clearTimeout(timer);
      if (watch) clearInterval(watch);
    };
    child.on('error', (err) => {
      stop();
      reject(new CommandError(`${file} ${args.join(' ')}`, null, err.message));
    });
    child.on('exit', (code) => {
      stop();
      if (code === 0 && killedFor === null) {
        resolve();
        return;
      }
      // Ends in reject either way; a log that cannot be read only makes the message vaguer.
      void readFile(logFile, 'utf8')
        .catch(() => '')
        .then((log) => {
          const why = killedFor ?? lastLogMessages(log);
          reject(new CommandError(`${file} ${args.join(' ')}`, code, why));
        });
    });
  });
}

/** How long a detached command may leave a dead child unreaped before it is taken as stuck. */
export const ORPHANED_WAIT_MS = 1500;
const WATCH_INTERVAL_MS = 250;

/**
 * Poll `pid`'s children (every thread's `children` list); call `onStuck` with a child's
 * name and pid once that child has been a zombie for `ORPHANED_WAIT_MS`.
 */
function watchUnreapedChildren(pid: number, onStuck: (dead: string) => void): NodeJS.Timeout {
  const zombieSince = new Map<number, number>();
  let busy = false;
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    void zombieChildren(pid)
      .then((zombies) => {
        const now = performance.now();
        for (const z of zombieSince.keys()) if (!zombies.has(z)) zombieSince.delete(z);
        for (const [z, name] of zombies) {
          const since = zombieSince.get(z) ?? now;
          zombieSince.set(z, since);
          if (now - since >= ORPHANED_WAIT_MS) onStuck(`${name} (pid ${z})`);
        }
      })
      .finally(() => {
        busy = false;
      });
  }, WATCH_INTERVAL_MS);
  timer.unref();
  return timer;
}

/** The children of `pid` that have exited and wait to be reaped, with their names; none when it is gone. */
async function zombieChildren(pid: number): Promise<Map<number, string>> {
  const found = new Map<number, string>();
  const tasks = await readdir(`/proc/${pid}/task`).catch(() => [] as string[]);
  for (const task of tasks) {
    const children = await readFile(`/proc/${pid}/task/${task}/children`, 'utf8').catch(() => '');
    for (const c of children.split(' ')) {
      if (c === '') continue;
      const stat = await readFile(`/proc/${c}/stat`, 'utf8').catch(() => '');
      // "pid (comm) S ...": the comm may hold spaces and parentheses, so the state follows the last ')'.
      const close = stat.lastIndexOf(')');
      if (close > 0 && stat[close + 2] === 'Z') found.set(Number(c), stat.slice(stat.indexOf('(') + 1, close));
    }
  }
  return found;
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
