import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { ExecStartError, type PtyHandle, type PtyOptions } from '../runtime.js';
import { killTree, logKillFailure, plainStartError, readPid, removeScratchFile, startFailure, type RuncExecContext } from './exec.js';

/** The relay and runc get this long to start the command. */
const START_TIMEOUT_MS = 30_000;
/** After asking the relay to hang up, it gets this long to exit before it is killed. */
const RELAY_EXIT_WAIT_MS = 2_000;
/** After the hangup, the command gets this long to exit before it is killed. */
const HANGUP_GRACE_MS = 500;
/** Longest unix socket path (108 bytes with the terminating NUL). */
const MAX_SOCKET_PATH = 100;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Start a command on a new terminal: `runc exec --detach --tty` sends the pty master to
 * the relay (see pty-relay.ts), which copies bytes both ways and applies window sizes.
 * With --detach, runc exits once the command runs; the machine's init adopts and reaps it.
 */
export async function runcStartPty(
  ctx: RuncExecContext,
  relayPath: string,
  id: string,
  o: PtyOptions,
  output: (chunk: Buffer) => void,
): Promise<PtyHandle> {
  const name = `pty-${randomBytes(8).toString('hex')}`;
  let socketPath = join(ctx.machineDir, `${name}.sock`);
  if (socketPath.length > MAX_SOCKET_PATH) socketPath = join(tmpdir(), `hangar-${name}.sock`);
  const pidFile = join(ctx.machineDir, `${name}.pid`);

  const args = [
    ...ctx.oci.globalArgs, '--log', '/dev/null', 'exec', '--detach', ...ctx.oci.execTtyArgs, '--console-socket', socketPath, '--pid-file', pidFile,
    '--cwd', o.cwd, '--user', `${o.uid}:${o.gid}`,
  ];
  for (const [k, v] of Object.entries(o.env)) args.push('--env', `${k}=${v}`);
  args.push(id, ...o.argv);

  // The relay runs runc itself (it must be runc's parent to adopt the command).
  const relay = spawn(relayPath, [socketPath, String(o.cols), String(o.rows), pidFile, ctx.oci.binary, ...args], {
    stdio: ['pipe', 'pipe', 'pipe', 'pipe'],
    detached: true,
  });
  let relayExited = false;
  const relayExit = new Promise<void>((resolve) => {
    // 'close', not 'exit': the relay's last output has been read by then.
    relay.once('close', () => {
      relayExited = true;
      resolve();
    });
    relay.once('error', () => {
      relayExited = true;
      resolve();
    });
  });
  // EPIPE once the relay has exited: the terminal is closed and `exited` says so.
  relay.stdin.on('error', () => undefined);
  relay.stdout.on('data', (c: Buffer) => output(c));
  const control = relay.stdio[3] as Writable;
  // Same for the control pipe: a resize or hangup after the end has nothing left to act on.
  control.on('error', () => undefined);
  let relayLog = '';
  relay.stderr.setEncoding('utf8');
  const started = new Promise<boolean>((resolve) => {
    relay.stderr.on('data', (c: string) => {
      relayLog += c;
      if (/^started$/m.test(relayLog)) resolve(true);
      if (/^start-failed$/m.test(relayLog)) resolve(false);
    });
    void relayExit.then(() => resolve(false));
    setTimeout(() => resolve(false), START_TIMEOUT_MS).unref();
  });
  const cleanup = async (): Promise<void> => {
    await removeScratchFile(socketPath);
    await removeScratchFile(pidFile);
  };
  if (!(await started)) {
    if (!relayExited) relay.kill('SIGKILL');
    await relayExit;
    await cleanup();
    const message = relayLog.replace(/^start-failed$/m, '').trim() || 'the terminal could not be started';
    throw new ExecStartError(plainStartError(message, o.cwd), id, startFailure(message));
  }
  const hostPid = await readPid(pidFile);
  await removeScratchFile(pidFile);

  let killing: Promise<void> | null = null;
  // Once the terminal closed and, when it was killed, the command is gone too.
  const exited = relayExit.then(async () => {
    await killing;
    await cleanup();
    const code = /^exit (\d+)$/m.exec(relayLog)?.[1];
    return { exitCode: code === undefined ? null : Number(code) };
  });
  const handle: PtyHandle = {
    pid: 0,
    write: (data) => {
      if (!relay.stdin.writableEnded && !relay.stdin.destroyed) relay.stdin.write(data);
    },
    resize: (cols, rows) => {
      if (!control.destroyed) control.write(`${cols} ${rows}\n`);
    },
    pause: () => (relay.stdout as Readable).pause(),
    resume: () => (relay.stdout as Readable).resume(),
    kill: () => {
      killing ??= (async () => {
        // Hang up first, as closing a terminal window does: with the master closed the kernel
        // sends SIGHUP to the session, which ends a shell and its jobs at once.
        // The relay closes the master, then reaps the command once it has gone (up to 1 s).
        if (!control.destroyed) control.write('hangup\n');
        await Promise.race([relayExit, sleep(RELAY_EXIT_WAIT_MS)]);
        if (!relayExited) relay.kill('SIGKILL');
        await relayExit;
        if (hostPid === null) return;
        const giveUp = Date.now() + HANGUP_GRACE_MS;
        while (Date.now() < giveUp && (await isAlive(hostPid))) await sleep(20);
        // A command that ignores SIGHUP: kill it and everything it started.
        if (await isAlive(hostPid)) await killTree(hostPid);
      })().catch((err: unknown) => logKillFailure(ctx, id, err));
    },
    exited,
  };
  // The in-machine pid, for logs and the session's description (the command may already be gone).
  if (hostPid !== null) handle.pid = await nsPid(hostPid);
  return handle;
}

/** True while a host process exists and is not a zombie (a zombie may wait long for its reaper). */
async function isAlive(pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => null);
  if (stat === null) return false;
  const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  return state !== 'Z' && state !== 'X';
}

/** The innermost pid of a host process (its pid inside the machine), or 0 when it is gone. */
async function nsPid(hostPid: number): Promise<number> {
  const status = await readFile(`/proc/${hostPid}/status`, 'utf8').catch(() => '');
  const line = /^NSpid:\s*(.*)$/m.exec(status)?.[1]?.trim().split(/\s+/);
  return line ? Number(line.at(-1)) || 0 : 0;
}
