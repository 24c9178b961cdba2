import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { constants } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { ExecStartError, RuntimeError, type ExecIo, type ExecResult, type ProcessHandle, type ProcessOptions, type ProcessSignal } from '../runtime.js';
import { killTree, logKillFailure, plainStartError, pump, readPid, removeScratchFile, startFailure, type RuncExecContext } from './exec.js';

/**
 * Runs first inside the machine, as the process that becomes the command: it checks the
 * command exists (so a typo is a start error, not a process that exits 127), reports its
 * own pid inside the machine on fd 3 (that pid is the command's after `exec`), closes
 * fd 3 and execs the command. `$$` is read inside the machine's pid namespace, which is
 * why this is reliable even for a command that exits at once, unlike reading /proc later.
 */
const PID_REPORTER = 'command -v "$1" >/dev/null 2>&1 || { echo "$1: command not found" >&2; exit 127; }; echo $$ >&3; exec 3>&-; exec "$@"';
const PID_POLL_MS = 5;
/** Stdin bytes a process has not read yet that are held for it; past this a write is refused. */
const STDIN_PENDING_MAX_BYTES = 4 * 1024 * 1024;
const PID_FILE_WAIT_MS = 5_000;
/** After the command's tree is killed, runc gets this long to exit before it is killed too. */
const RUNC_EXIT_GRACE_MS = 1_000;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function sendSignal(pid: number, sig: NodeJS.Signals): boolean {
  try {
    process.kill(pid, sig);
    return true;
  } catch {
    return false;
  }
}

/**
 * Start a background command with `runc exec` and pipes for stdio; stdin stays open for
 * `write`. Resolves once the command runs, with its pid inside the machine.
 */
export async function runcStartProcess(ctx: RuncExecContext, id: string, o: ProcessOptions, io: ExecIo): Promise<ProcessHandle> {
  if (!ctx.oci.execPreservesFds) {
    // Only the agent (root's commands) serves background processes there.
    throw new ExecStartError(`a background process as uid ${o.uid} cannot be started here: ${ctx.oci.binary} exec cannot pass the descriptor its pid is reported on; run it as root`, id, 'cannot_start');
  }
  const pidFile = join(ctx.machineDir, `proc-${randomBytes(8).toString('hex')}.pid`);
  const args = [
    ...ctx.oci.globalArgs, '--log', '/dev/null', 'exec', '--pid-file', pidFile, '--preserve-fds', '1',
    '--cwd', o.cwd, '--user', `${o.uid}:${o.gid}`,
  ];
  for (const [k, v] of Object.entries(o.env)) args.push('--env', `${k}=${v}`);
  args.push(id, '/bin/sh', '-c', PID_REPORTER, 'sh', ...o.argv);

  const startedAt = performance.now();
  // Own process group: a Ctrl-C meant for the server must not reach commands through runc.
  const child = spawn(ctx.oci.binary, args, { stdio: ['pipe', 'pipe', 'pipe', 'pipe'], detached: true });
  let exited = false;
  let timedOut = false;
  const runcExit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
    child.once('error', (err) => reject(new RuntimeError(`could not run ${ctx.oci.binary}: ${err.message}`, id, 'exec')));
    child.once('exit', (code, signal) => {
      exited = true;
      resolve({ code, signal });
    });
  });
  // Marked handled at once: a spawn failure may reject it before anything awaits it; the
  // rejection is still read below, where it is awaited.
  runcExit.catch(() => undefined);

  const pidPipe = child.stdio[3] as Readable;
  const pidInside = new Promise<number | null>((resolve) => {
    let text = '';
    pidPipe.setEncoding('utf8');
    pidPipe.on('data', (c: string) => {
      text += c;
      const m = /^(\d+)\n/.exec(text);
      if (m) resolve(Number(m[1]));
    });
    pidPipe.once('close', () => resolve(null));
    pidPipe.once('error', () => resolve(null));
    void runcExit.then(() => resolve(null), () => resolve(null));
  });

  // EPIPE once the command exits or closes its stdin: `write` then answers 'closed'.
  child.stdin.on('error', () => undefined);
  // Until the command is known to run, stderr may carry the reason it could not start: hold it back.
  let started = false;
  const heldStderr: Buffer[] = [];
  const stdoutDone = pump(child.stdout, (c) => io.stdout(c));
  const stderrDone = pump(child.stderr, (c) => {
    if (!started) {
      heldStderr.push(c);
      return undefined;
    }
    return io.stderr(c);
  });

  const pid = await pidInside;
  if (pid === null) {
    const status = await runcExit.catch(() => ({ code: null, signal: null }));
    await Promise.all([stdoutDone, stderrDone]);
    await removeScratchFile(pidFile);
    const message = Buffer.concat(heldStderr).toString('utf8').trim();
    if (status.code === 127 && /command not found$/.test(message)) throw new ExecStartError(message, id, 'not_found');
    throw new ExecStartError(plainStartError(message, o.cwd), id, startFailure(message));
  }
  started = true;
  for (const c of heldStderr.splice(0)) await io.stderr(c);

  // runc writes the host pid file once the command has started; wait for it (signals need it).
  let hostPid: number | null = null;
  const giveUp = Date.now() + PID_FILE_WAIT_MS;
  while (hostPid === null && !exited && Date.now() < giveUp) {
    hostPid = await readPid(pidFile);
    if (hostPid === null) await sleep(PID_POLL_MS);
  }

  // Typed by a cast: it is set in callbacks, which TypeScript's narrowing does not see.
  let killing = null as Promise<void> | null;
  const kill = (): void => {
    killing ??= (async () => {
      if (hostPid !== null && !exited) await killTree(hostPid);
      // Rejected only when runc could not be spawned: then there is nothing to wait for.
      await Promise.race([runcExit, sleep(RUNC_EXIT_GRACE_MS)]).catch(() => undefined);
      if (!exited) child.kill('SIGKILL');
    })().catch((err: unknown) => logKillFailure(ctx, id, err));
  };
  const timer = o.timeoutMs === undefined ? null : setTimeout(() => {
    timedOut = true;
    kill();
  }, o.timeoutMs);

  const done = (async (): Promise<ExecResult> => {
    try {
      const status = await runcExit;
      await Promise.all([stdoutDone, stderrDone]);
      const exitCode = status.code ?? 128 + (status.signal ? constants.signals[status.signal] : 0);
      return { exitCode, timedOut, aborted: false, durationMs: Math.round(performance.now() - startedAt) };
    } finally {
      if (timer) clearTimeout(timer);
      await killing;
      await removeScratchFile(pidFile);
    }
  })();

  return {
    pid,
    write: (data) => {
      if (child.stdin.destroyed || child.stdin.writableEnded) return 'closed';
      if (child.stdin.writableLength + data.length > STDIN_PENDING_MAX_BYTES) return 'full';
      child.stdin.write(data);
      return 'written';
    },
    closeStdin: () => {
      if (!child.stdin.writableEnded) child.stdin.end();
    },
    signal: (sig: ProcessSignal) => {
      if (hostPid === null || exited) return;
      // The process group: runc makes the command a session leader, so this reaches what it started too.
      if (!sendSignal(-hostPid, `SIG${sig}`)) sendSignal(hostPid, `SIG${sig}`);
    },
    kill,
    exited: done,
  };
}
