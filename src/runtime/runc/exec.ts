import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdir, readFile, rm } from 'node:fs/promises';
import { constants } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { ExecStartError, RuntimeError, type ExecIo, type ExecOptions, type ExecResult, type ExecStartFailure } from '../runtime.js';
import { errorMessage, type RuntimeLogger } from './best-effort.js';
import type { OciCli } from './oci-cli.js';

/** What `runc exec` needs from the runtime. */
export interface RuncExecContext {
  /** The machine's OCI runtime command (runc, or runsc for a gvisor machine). */
  oci: OciCli;
  /** The machine's directory on the host; each exec keeps its pid file there while it runs. */
  machineDir: string;
  /** Told when killing a command failed (it may still run). */
  log: RuntimeLogger;
}

/** How often the pid file is looked for while it is needed and not yet written. */
const PID_POLL_MS = 5;
/** A kill wanted before runc wrote the pid file waits this long for it, then kills runc itself. */
const PID_WAIT_MS = 2_000;
/**
 * After the command's tree is killed, runc gets this long to exit. A daemon that left the
 * tree and its process group may still hold the output pipes, and runc would wait for it.
 */
const RUNC_EXIT_GRACE_MS = 1_000;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Run one command in a machine with `runc exec` and pipes for stdio. Without `-d`, runc
 * copies the command's output through its own pipes and exits with the command's status
 * once the command has exited and those pipes are closed: a background process that
 * keeps them open (`cmd &`) holds the answer, as with `docker exec` or ssh. runc writes
 * the command's host pid to a pid file once it runs: that file tells a start failure
 * (runc's own message on stderr, exit 255) from a command that itself exited 255, and
 * gives the pid to kill.
 */
export async function runcExec(ctx: RuncExecContext, id: string, o: ExecOptions, io: ExecIo): Promise<ExecResult> {
  const pidFile = join(ctx.machineDir, `exec-${randomBytes(8).toString('hex')}.pid`);
  // --log: runc's own log lines go there, so stderr carries only the command's output or one plain error.
  const args = [...ctx.oci.globalArgs, '--log', '/dev/null', 'exec', '--pid-file', pidFile, '--cwd', o.cwd, '--user', `${o.uid}:${o.gid}`];
  for (const [k, v] of Object.entries(o.env)) args.push('--env', `${k}=${v}`);
  args.push(id, ...o.argv);

  const startedAt = performance.now();
  // Own process group: a Ctrl-C meant for the server must not reach commands through runc.
  const child = spawn(ctx.oci.binary, args, { stdio: 'pipe', detached: true });
  let exited = false;
  let timedOut = false;
  let aborted = false;
  let running = false;

  const isRunning = async (): Promise<boolean> => {
    running ||= (await readPid(pidFile)) !== null;
    return running;
  };

  const runcExit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
    child.once('error', (err) => reject(new RuntimeError(`could not run ${ctx.oci.binary}: ${err.message}`, id, 'exec')));
    child.once('exit', (code, signal) => {
      exited = true;
      resolve({ code, signal });
    });
  });
  // Typed by a cast: it is set in callbacks, which TypeScript's narrowing does not see.
  let killing = null as Promise<void> | null;
  const kill = (): void => {
    killing ??= (async () => {
      const giveUp = Date.now() + PID_WAIT_MS;
      while (!exited && Date.now() < giveUp) {
        const pid = await readPid(pidFile);
        if (pid !== null) {
          await killTree(pid);
          break;
        }
        await sleep(PID_POLL_MS);
      }
      // Rejected only when runc could not be spawned: then there is nothing to wait for.
      await Promise.race([runcExit, sleep(RUNC_EXIT_GRACE_MS)]).catch(() => undefined);
      if (!exited) child.kill('SIGKILL');
    })().catch((err: unknown) => logKillFailure(ctx, id, err));
  };
  const timer = setTimeout(() => {
    timedOut = true;
    kill();
  }, o.timeoutMs);
  const onAbort = (): void => {
    aborted = true;
    kill();
  };
  if (o.signal?.aborted) onAbort();
  else o.signal?.addEventListener('abort', onAbort, { once: true });

  // Without stdin the command reads end-of-file at once. It may exit without reading it all: EPIPE is expected.
  child.stdin.on('error', () => undefined);
  if (o.stdin === undefined || Buffer.isBuffer(o.stdin)) child.stdin.end(o.stdin);
  else o.stdin.pipe(child.stdin);
  // Until the command is known to run, stderr may be runc's start error: hold it back.
  const heldStderr: Buffer[] = [];
  // Typed by a cast: it is set in callbacks, which TypeScript's narrowing does not see.
  let releasing = null as Promise<void> | null;
  const releaseWhenRunning = (): Promise<void> =>
    (releasing ??= (async () => {
      while (!exited && !(await isRunning())) await sleep(PID_POLL_MS);
      if (running) for (const c of heldStderr.splice(0)) await io.stderr(c);
    })().finally(() => {
      releasing = null;
    }));
  const stdoutDone = pump(child.stdout, (c) => {
    running = true; // runc prints nothing on stdout: any byte there is the command's
    return io.stdout(c);
  });
  const stderrDone = pump(child.stderr, (c) => {
    if (running && heldStderr.length === 0) return io.stderr(c);
    heldStderr.push(c);
    return releaseWhenRunning();
  });

  try {
    const status = await runcExit;
    const durationMs = Math.round(performance.now() - startedAt);
    // runc was the only writer of these pipes: they end now that it has exited.
    await Promise.all([stdoutDone, stderrDone]);
    await releasing;
    if (!(await isRunning()) && !timedOut && !aborted) {
      const message = Buffer.concat(heldStderr).toString('utf8').trim();
      throw new ExecStartError(plainStartError(message, o.cwd), id, startFailure(message));
    }
    for (const c of heldStderr.splice(0)) await io.stderr(c);
    const exitCode = status.code ?? 128 + (status.signal ? constants.signals[status.signal] : 0);
    return { exitCode, timedOut, aborted, durationMs };
  } finally {
    clearTimeout(timer);
    o.signal?.removeEventListener('abort', onAbort);
    // A command that exits before reading all its input leaves the rest to the caller.
    if (o.stdin !== undefined && !Buffer.isBuffer(o.stdin)) o.stdin.unpipe(child.stdin);
    exited = true;
    await killing;
    await removeScratchFile(pidFile);
  }
}

/**
 * Remove a command's pid file or socket. `force` already ignores a missing file; any
 * other failure leaves a small file behind, in the machine's directory (removed with the
 * machine) or in the host's temporary directory, which nothing reads again.
 */
export async function removeScratchFile(path: string): Promise<void> {
  await rm(path, { force: true }).catch(() => undefined);
}

/** A kill of a command failed: say so, since it may still be running. */
export function logKillFailure(ctx: RuncExecContext, machineId: string, err: unknown): void {
  ctx.log.warn({ machineId, err: errorMessage(err) }, 'could not kill a command inside the machine');
}

/** Feed a stream's chunks to `sink`, pausing while a returned promise is pending. Resolves at the end. */
export function pump(stream: Readable, sink: (chunk: Buffer) => void | Promise<void>): Promise<void> {
  return new Promise((resolve) => {
    stream.on('data', (chunk: Buffer) => {
      const pending = sink(chunk);
      if (!pending) return;
      stream.pause();
      // The promise is the sink's own (its caller sees its failure); reading must go on
      // regardless, or the command would block on a full pipe forever.
      pending.catch(() => undefined).finally(() => stream.resume());
    });
    stream.once('close', resolve);
    stream.once('error', () => resolve());
  });
}

/** The host pid runc wrote to `pidFile`, or null while it is not written (yet). */
export async function readPid(pidFile: string): Promise<number | null> {
  const text = await readFile(pidFile, 'utf8').catch(() => '');
  const pid = Number(text.trim());
  return Number.isInteger(pid) && pid > 0 ? pid : null;
}

/** Classify runc's (or runsc's) message about a command it could not start. */
export function startFailure(message: string): ExecStartFailure {
  // runsc says "loading sandbox: file does not exist" of a container it has no state for.
  if (/container does not exist|cannot exec in a (stopped|paused) (state|container)|container is not running|loading (sandbox|container): file does not exist/i.test(message)) return 'not_running';
  // A user-namespaced machine's runc runs inside its network namespace, which goes when it stops.
  if (/nsenter: cannot open \S*\/netns\//.test(message)) return 'not_running';
  if (!/chdir/.test(message) && /executable file not found|no such file or directory/.test(message)) return 'not_found';
  return 'cannot_start';
}

/** runc's start error in the words a shell user expects, without runc's internals. */
export function plainStartError(message: string, cwd: string): string {
  if (/chdir to cwd/.test(message)) return `cannot change directory to ${cwd}: ${message.slice(message.lastIndexOf(': ') + 2)}`;
  return message.replace(/^exec failed: (unable to start container process: )?/, '') || 'the command could not be started';
}

/** Host pids of `root` and all its descendants, found through /proc. */
async function processTree(root: number): Promise<number[]> {
  const children = new Map<number, number[]>();
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const stat = await readFile(`/proc/${name}/stat`, 'utf8').catch(() => null);
    if (stat === null) continue;
    // The command name may hold spaces and parentheses: the fields resume after the last ')'.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    const siblings = children.get(ppid) ?? [];
    siblings.push(Number(name));
    children.set(ppid, siblings);
  }
  const alive = await readFile(`/proc/${root}/stat`, 'utf8').then(() => true, () => false);
  const tree = alive ? [root] : [];
  for (let i = 0; i < tree.length; i++) tree.push(...(children.get(tree[i]!) ?? []));
  return tree;
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // ESRCH: already gone, which is what a kill wants.
  }
}

/**
 * SIGKILL a command and everything it started. All are stopped first, so none can fork
 * a child that escapes the kill; the process group (runc makes the command a session
 * leader) is killed too, for anything the walk missed.
 */
export async function killTree(root: number): Promise<void> {
  const stopped = new Set<number>();
  for (let round = 0; round < 5; round++) {
    const fresh = (await processTree(root)).filter((p) => !stopped.has(p));
    if (fresh.length === 0) break;
    for (const p of fresh) {
      signal(p, 'SIGSTOP');
      stopped.add(p);
    }
  }
  signal(-root, 'SIGKILL');
  for (const p of stopped) signal(p, 'SIGKILL');
}
