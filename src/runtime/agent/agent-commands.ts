/**
 * Commands run through the in-machine agent: the same three shapes as the Runtime
 * interface (exec to the end, a background process, a terminal), over one session each.
 * Backpressure runs both ways: a slow `ExecIo` consumer pauses the socket (so the agent,
 * then the command, wait), and stdin is sent only as fast as the socket drains. A session
 * that ended cleanly gives its connection back for the next one; from then on nothing it
 * is asked (a late signal, a write) reaches the socket.
 */
import type { Socket } from 'node:net';
import type { AgentConnection } from './agent-host.js';
import type { Readable } from 'node:stream';
import { ExecStartError, type ExecIo, type ExecOptions, type ExecResult, type ProcessHandle, type ProcessOptions, type ProcessSignal, type PtyHandle, type PtyOptions } from '../runtime.js';
import { encodeExec, encodeFrame, FRAME, FrameDecoder, frameHeader, parseStrings, REUSABLE_MARK, STDIN_CHUNK, strings, type AgentCommand } from './protocol.js';

/** Stdin bytes a process has not read yet that are held for it; past this a write is refused (as on the runc path). */
const STDIN_PENDING_MAX_BYTES = 4 * 1024 * 1024;
/** A stream fed to stdin (an upload) waits while this much is sent and not yet taken by the command. */
const STDIN_WINDOW_BYTES = 256 * 1024;
/** After a kill, the agent gets this long to report the exit before the session is cut (which kills too). */
const KILL_GRACE_MS = 2_000;

const SIGNALS: Record<ProcessSignal, number> = { HUP: 1, INT: 2, QUIT: 3, KILL: 9, USR1: 10, USR2: 12, TERM: 15, CONT: 18, STOP: 19, TSTP: 20, WINCH: 28 };

/** What a session reports as it goes. */
interface SessionEvents {
  stdout(chunk: Buffer): void | Promise<void>;
  stderr(chunk: Buffer): void | Promise<void>;
}

/** One command on one connection to the agent. */
class Session {
  private started!: (pid: number) => void;
  private failedStart!: (err: Error) => void;
  /** Settles with the pid once the command runs, or rejects when it could not start. */
  readonly running: Promise<number>;
  private ended!: (code: number | null) => void;
  /** The exit status, or null when the connection ended without one (the agent or the machine went). */
  readonly exit: Promise<number | null>;
  private code: number | null = null;
  /** `running` has settled: the command started, or could not. */
  private startSettled = false;
  /** Settles once the sink took every output chunk handed to it so far. */
  private output: Promise<void> = Promise.resolve();
  private killTimer: NodeJS.Timeout | null = null;
  /** Stdin sent and not yet acknowledged as written to the command (the agent's buffer). */
  private inflight = 0;
  /** The command closed its stdin, or the session ended: nothing more is sent. */
  stdinGone = false;
  private creditWaiters: (() => void)[] = [];
  /** The last frame came: nothing more is sent on the connection, which may already serve another session. */
  private finished = false;
  private readonly socket: Socket;
  private readonly listeners: { data: (chunk: Buffer) => void; error: () => void; close: () => void };

  constructor(
    readonly id: string,
    private readonly connection: AgentConnection,
    command: AgentCommand,
    events: SessionEvents,
  ) {
    const socket = connection.socket;
    this.socket = socket;
    this.running = new Promise((resolve, reject) => {
      this.started = (pid) => {
        this.startSettled = true;
        resolve(pid);
      };
      this.failedStart = (err) => {
        this.startSettled = true;
        reject(err);
      };
    });
    this.exit = new Promise((resolve) => (this.ended = resolve));
    // Only the first outcome counts; a start failure is also the session's end.
    this.running.catch(() => undefined);
    const decoder = new FrameDecoder(
      (f) => {
        switch (f.type) {
          case FRAME.started:
            this.started(Number(parseStrings(f.payload)[0]));
            return;
          case FRAME.failed: {
            const [kind, message, mark] = parseStrings(f.payload);
            this.failedStart(new ExecStartError(message ?? 'the command could not be started', id, kind === 'not_found' ? 'not_found' : 'cannot_start'));
            // The agent waits for the connection's end (or, given back, the next request): no write of ours can fail first.
            this.finish(mark === REUSABLE_MARK);
            return;
          }
          case FRAME.stdout:
          case FRAME.stderr: {
            const pending = (f.type === FRAME.stdout ? events.stdout : events.stderr)(Buffer.from(f.payload));
            if (pending) {
              socket.pause();
              // The sink's own failure is its caller's to see; reading goes on either way.
              const taken = pending.catch(() => undefined).finally(() => socket.resume());
              this.output = this.output.then(() => taken);
            }
            return;
          }
          case FRAME.exit: {
            const [code, mark] = parseStrings(f.payload);
            this.code = Number(code);
            this.stdinEnded();
            // Every output frame came before the status: the command is done once the sink took them,
            // without waiting for the agent's session to close the connection and exit.
            this.finish(mark === REUSABLE_MARK);
            return;
          }
          case FRAME.ack:
            this.inflight = Math.max(0, this.inflight - Number(parseStrings(f.payload)[0]));
            if (this.inflight < STDIN_WINDOW_BYTES) this.wakeFeeders();
            return;
          case FRAME.stdinGone:
            this.stdinEnded();
            return;
          default:
            socket.destroy();
        }
      },
      () => socket.destroy(),
    );
    this.listeners = {
      data: (chunk: Buffer) => decoder.push(chunk),
      error: () => socket.destroy(),
      close: () => {
        if (this.killTimer) clearTimeout(this.killTimer);
        this.finished = true;
        this.stdinEnded();
        // An error (and its stack) only for a session that never got as far as its command.
        if (!this.startSettled) this.failedStart(new ExecStartError('the machine stopped before the command started', id, 'not_running'));
        const code = this.code;
        void this.output.then(() => this.ended(code));
      },
    };
    socket.on('data', this.listeners.data);
    socket.on('error', this.listeners.error);
    socket.once('close', this.listeners.close);
    // The request and what the caller sends at once (stdin, its end) leave in one write: the agent wakes once.
    socket.cork();
    socket.write(encodeExec(command));
    process.nextTick(() => socket.uncork());
    socket.resume();
  }

  /**
   * The session's last frame came. Once the sink took every output chunk (so no pause or
   * resume of ours is still to come), the connection goes back for the next session when
   * the agent can go on (`reusable`), and is ended otherwise.
   */
  private finish(reusable: boolean): void {
    this.finished = true;
    void this.output.then(() => {
      if (this.killTimer) clearTimeout(this.killTimer);
      if (this.socket.destroyed) return; // 'close' settles the session
      this.socket.off('data', this.listeners.data);
      this.socket.off('error', this.listeners.error);
      this.socket.off('close', this.listeners.close);
      if (reusable) this.connection.giveBack();
      else {
        // Errors on the way out are nobody's: it is closed either way.
        this.socket.on('error', () => this.socket.destroy());
        this.socket.end();
      }
      this.ended(this.code);
    });
  }

  /** Send stdin bytes (in pieces); false once the send window is full (wait for `credit`). */
  write(data: Buffer): boolean {
    if (this.stdinGone || this.finished) return false;
    // Header and bytes as two writes in one cork: the payload is never copied.
    this.socket.cork();
    for (let at = 0; at < data.length; at += STDIN_CHUNK) {
      const piece = data.subarray(at, at + STDIN_CHUNK);
      this.socket.write(frameHeader(FRAME.stdin, piece.length));
      this.socket.write(piece);
    }
    process.nextTick(() => this.socket.uncork());
    this.inflight += data.length;
    return this.inflight < STDIN_WINDOW_BYTES;
  }

  /** Stdin sent that the command has not taken yet. */
  get backlog(): number {
    return this.inflight;
  }

  /** Settles once the window has room again, or stdin is gone. */
  credit(): Promise<void> {
    if (this.stdinGone || this.inflight < STDIN_WINDOW_BYTES) return Promise.resolve();
    return new Promise((resolve) => this.creditWaiters.push(resolve));
  }

  private wakeFeeders(): void {
    for (const w of this.creditWaiters.splice(0)) w();
  }

  private stdinEnded(): void {
    this.stdinGone = true;
    this.wakeFeeders();
  }

  /** Close the command's stdin. */
  closeStdin(): void {
    if (!this.stdinGone && !this.finished && !this.socket.writableEnded) this.socket.write(encodeFrame(FRAME.stdin));
  }

  /** Signal the command's process group. */
  signal(sig: number): void {
    if (!this.finished && !this.socket.writableEnded) this.socket.write(encodeFrame(FRAME.signal, strings(sig)));
  }

  /** Change the terminal's size. */
  resize(cols: number, rows: number): void {
    if (!this.finished && !this.socket.writableEnded) this.socket.write(encodeFrame(FRAME.resize, strings(rows, cols)));
  }

  /** SIGKILL the group; if the agent cannot say so in time, cut the session (the agent kills on that too). */
  kill(): void {
    if (this.finished) return;
    this.signal(SIGNALS.KILL);
    this.killTimer ??= setTimeout(() => this.socket.destroy(), KILL_GRACE_MS);
    this.killTimer.unref();
  }

  pause(): void {
    if (!this.finished) this.socket.pause();
  }

  resume(): void {
    if (!this.finished) this.socket.resume();
  }
}

/**
 * Feed a stream to the session's stdin within the send window; closes stdin at its end.
 * Stops taking from the stream (without consuming the rest) once the command closed its
 * stdin or ended, as a pipe would. A stream that fails instead of ending leaves stdin
 * open: the caller aborts the command (ExecOptions.stdin).
 */
function feed(session: Session, stream: Readable): void {
  const stop = (): void => {
    stream.off('data', onData);
    stream.off('end', onEnd);
    stream.pause();
  };
  const onData = (chunk: Buffer | string): void => {
    if (session.stdinGone) return stop();
    if (session.write(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk))) return;
    stream.pause();
    void session.credit().then(() => (session.stdinGone ? stop() : stream.resume()));
  };
  const onEnd = (): void => session.closeStdin();
  stream.on('data', onData);
  stream.once('end', onEnd);
  void session.exit.then(stop);
}

/** The exit status of a command whose session ended without one: killed with its machine. */
const KILLED = 128 + SIGNALS.KILL;

/** Run a command to the end through the agent (Runtime.exec). */
export async function agentExec(connection: AgentConnection, id: string, o: ExecOptions, io: ExecIo): Promise<ExecResult> {
  const startedAt = performance.now();
  const session = new Session(id, connection, { mode: 'pipes', argv: o.argv, cwd: o.cwd, env: o.env }, io);
  let timedOut = false;
  let aborted = false;
  const timer = setTimeout(() => {
    timedOut = true;
    session.kill();
  }, o.timeoutMs);
  const onAbort = (): void => {
    aborted = true;
    session.kill();
  };
  if (o.signal?.aborted) onAbort();
  else o.signal?.addEventListener('abort', onAbort, { once: true });
  // Stdin goes out with the request: the agent holds it until the command runs.
  if (o.stdin === undefined) session.closeStdin();
  else if (Buffer.isBuffer(o.stdin)) {
    session.write(o.stdin);
    session.closeStdin();
  } else feed(session, o.stdin);
  try {
    await session.running;
    const code = await session.exit;
    return { exitCode: code ?? KILLED, timedOut, aborted, durationMs: Math.round(performance.now() - startedAt) };
  } finally {
    clearTimeout(timer);
    o.signal?.removeEventListener('abort', onAbort);
  }
}

/** Start a background command through the agent (Runtime.startProcess); resolves once it runs. */
export async function agentStartProcess(connection: AgentConnection, id: string, o: ProcessOptions, io: ExecIo): Promise<ProcessHandle> {
  const startedAt = performance.now();
  const session = new Session(id, connection, { mode: 'pipes', argv: o.argv, cwd: o.cwd, env: o.env }, io);
  let timedOut = false;
  let stdinClosed = false;
  const timer =
    o.timeoutMs === undefined
      ? null
      : setTimeout(() => {
          timedOut = true;
          session.kill();
        }, o.timeoutMs);
  const pid = await session.running.catch((err: unknown) => {
    if (timer) clearTimeout(timer);
    throw err;
  });
  const exited = session.exit.then((code) => {
    if (timer) clearTimeout(timer);
    stdinClosed = true;
    return { exitCode: code ?? KILLED, timedOut, aborted: false, durationMs: Math.round(performance.now() - startedAt) };
  });
  return {
    pid,
    write: (data) => {
      if (stdinClosed || session.stdinGone) return 'closed';
      if (session.backlog + data.length > STDIN_PENDING_MAX_BYTES) return 'full';
      session.write(data);
      return 'written';
    },
    closeStdin: () => {
      if (stdinClosed) return;
      stdinClosed = true;
      session.closeStdin();
    },
    signal: (sig) => session.signal(SIGNALS[sig]),
    kill: () => session.kill(),
    exited,
  };
}

/** Start a command on a terminal through the agent (Runtime.startPty). */
export async function agentStartPty(connection: AgentConnection, id: string, o: PtyOptions, output: (chunk: Buffer) => void): Promise<PtyHandle> {
  const session = new Session(id, connection, { mode: 'terminal', argv: o.argv, cwd: o.cwd, env: o.env, rows: o.rows, cols: o.cols }, { stdout: output, stderr: output });
  const pid = await session.running;
  return {
    pid,
    write: (data) => {
      session.write(data);
    },
    resize: (cols, rows) => session.resize(cols, rows),
    pause: () => session.pause(),
    resume: () => session.resume(),
    kill: () => session.kill(),
    // No status: the terminal was cut (the machine paused or stopped, or the agent died), which kills its command.
    exited: session.exit.then((code) => ({ exitCode: code ?? KILLED })),
  };
}
