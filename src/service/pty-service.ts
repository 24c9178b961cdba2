import { HangarError } from '../domain/errors.js';
import type { Caller } from '../domain/team.js';
import { ExecStartError, RuntimeError, type PtyHandle, type Runtime } from '../runtime/runtime.js';
import { notRunning, type ExecService } from './exec-service.js';
import type { MachineService } from './machine-service.js';

/** An open terminal keeps its machine active: it is touched this often while a client is attached. */
const ACTIVITY_EVERY_MS = 1_000;
/** Output kept for a client that is not attached yet. */
const EARLY_OUTPUT_MAX_BYTES = 1024 * 1024;
/** The command of a terminal whose request names none: a login shell. */
export const DEFAULT_PTY_ARGV: readonly string[] = ['/bin/sh', '-l'];

/** A terminal to open. */
export interface PtyRequest {
  /** A shell string run with `/bin/sh -c`. @default a login shell, `/bin/sh -l` */
  cmd?: string;
  cwd?: string;
  user?: string;
  cols: number;
  rows: number;
}

/** An open terminal, as the HTTP edge drives it. */
export interface PtySession {
  /** The command's pid inside the machine (0 if it exited at once). */
  pid: number;
  write(data: Buffer): void;
  resize(cols: number, rows: number): void;
  /** Receive the output: what came before this call first, then the rest as it comes. */
  attach(onData: (chunk: Buffer) => void): void;
  pause(): void;
  resume(): void;
  /** The client went away: end the command, or (`keep`) leave it running, its output discarded. */
  detach(keep: boolean): void;
  /** Settles once the terminal has closed, with the command's exit code (128 + n for signal n) when known. */
  exited: Promise<{ exitCode: number | null }>;
}

/** Dependencies of the terminal service. */
export interface PtyServiceOptions {
  machines: MachineService;
  runtime: Runtime;
  exec: ExecService;
}

/**
 * Terminals inside machines (the WebSocket pty). Like background processes they are
 * in-memory state of this server: a pause or destroy ends them, and so does a server stop.
 */
export class PtyService {
  private readonly open = new Set<PtyHandle>();
  private closing = false;

  constructor(private readonly o: PtyServiceOptions) {}

  /** Start a command on a new terminal in a running machine. */
  async start(caller: Caller, id: string, req: PtyRequest): Promise<PtySession> {
    if (this.closing) throw new HangarError('NOT_READY', 'The server is shutting down.');
    const prepared = await this.o.exec.prepare(caller, id, { cmd: req.cmd ?? [...DEFAULT_PTY_ARGV], cwd: req.cwd, user: req.user });
    // Output that comes before the client is attached (a quick command may be done by then) waits for it.
    let early: Buffer[] | null = [];
    let earlyBytes = 0;
    let onData = (chunk: Buffer): void => {
      if (early === null || earlyBytes > EARLY_OUTPUT_MAX_BYTES) return;
      early.push(chunk);
      earlyBytes += chunk.length;
    };
    let handle: PtyHandle;
    try {
      handle = await this.o.runtime.startPty(id, {
        ...prepared,
        // Full-screen programs (vi, top) need to know the terminal type.
        env: { TERM: 'xterm-256color', ...prepared.env },
        cols: req.cols,
        rows: req.rows,
      }, (chunk) => onData(chunk));
    } catch (err) {
      if (err instanceof ExecStartError) {
        if (err.failure === 'not_running') throw notRunning(id, (await this.o.machines.get(caller, id)).status);
        throw new HangarError('COMMAND_NOT_STARTED', `The terminal's command could not be started: ${err.message}`, { reason: err.failure });
      }
      if (err instanceof RuntimeError && err.step === 'pty') throw new HangarError('RUNTIME_UNAVAILABLE', `Terminals are unavailable on this server: ${err.message}`);
      throw err;
    }
    this.open.add(handle);
    this.o.machines.touch(id);
    let keepActive: NodeJS.Timeout | null = setInterval(() => this.o.machines.touch(id), ACTIVITY_EVERY_MS);
    keepActive.unref();
    const stopTouching = (): void => {
      if (keepActive) clearInterval(keepActive);
      keepActive = null;
    };
    const exited = handle.exited.finally(() => {
      stopTouching();
      this.open.delete(handle);
      this.o.machines.touch(id);
    });
    const session: PtySession = {
      pid: handle.pid,
      write: (data) => {
        this.o.machines.touch(id);
        handle.write(data);
      },
      resize: (cols, rows) => handle.resize(cols, rows),
      attach: (to) => {
        for (const chunk of early ?? []) to(chunk);
        early = null;
        onData = to;
      },
      pause: () => handle.pause(),
      resume: () => handle.resume(),
      detach: (keep) => {
        stopTouching();
        early = null;
        onData = () => undefined;
        handle.resume();
        if (!keep) handle.kill();
      },
      exited,
    };
    return session;
  }

  /** End every terminal (server shutdown) and wait for them to close. */
  async close(): Promise<void> {
    this.closing = true;
    const all = [...this.open];
    for (const h of all) h.kill();
    await Promise.all(all.map((h) => h.exited));
  }
}
