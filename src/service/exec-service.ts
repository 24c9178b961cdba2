import { StringDecoder } from 'node:string_decoder';
import { HangarError, validationError } from '../domain/errors.js';
import type { Caller } from '../domain/team.js';
import { ExecStartError, type ExecIo, type ExecOptions, type Runtime } from '../runtime/runtime.js';
import type { TemplateResolver } from './template-service.js';
import { CappedBuffer } from './capped-buffer.js';
import type { MachineService } from './machine-service.js';
import { allows } from '../domain/transitions.js';

/** Output kept per stream of a non-streamed command; the rest is read and dropped. */
export const EXEC_OUTPUT_LIMIT_BYTES = 1024 * 1024;
/** Timeout of a command whose request names none. */
export const DEFAULT_EXEC_TIMEOUT_MS = 60_000;
/** The exit code reported for a command killed at its timeout, as timeout(1) does. */
export const TIMED_OUT_EXIT_CODE = 124;
/** A long command keeps its machine active: it is touched this often while it runs. */
const ACTIVITY_EVERY_MS = 1_000;
/** Looking up a user name inside the machine gives up after this long. */
const USER_LOOKUP_TIMEOUT_MS = 10_000;

/** What any command in a machine is given: the fields shared by exec, processes and pty. */
export type CommandRequest = Pick<ExecRequest, 'cmd' | 'cwd' | 'env' | 'user'>;

/** A command resolved against its machine, ready for the runtime. */
export interface PreparedCommand {
  argv: string[];
  cwd: string;
  env: Record<string, string>;
  uid: number;
  gid: number;
}

/** A command as the edge validated it. */
export interface ExecRequest {
  /** Argv, or a shell string run with `/bin/sh -c`. */
  cmd: string[] | string;
  /** Absolute and normalised. @default the machine's cwd, else its template's */
  cwd?: string;
  /** Set over the machine's environment. */
  env?: Record<string, string>;
  /** A user name (looked up inside the machine) or `uid[:gid]`. @default 'root' */
  user?: string;
  /** Fed to the command as UTF-8. @default empty */
  stdin?: string;
  /** @default 60000 */
  timeoutMs?: number;
}

/** How a command ended. */
export interface ExecExit {
  /** The command's exit code; 124 when it was killed at its timeout. */
  exitCode: number;
  durationMs: number;
  timedOut: boolean;
}

/** A finished command with its output (each stream at most 1 MiB). */
export interface ExecOutcome extends ExecExit {
  stdout: string;
  stderr: string;
  stdoutTruncated: boolean;
  stderrTruncated: boolean;
}

/** Receives a streamed command's output as text. */
export interface ExecStreamSink {
  /** Called once the request is accepted, just before the command starts: earlier failures are ordinary errors. */
  start(): void;
  stdout(text: string): void | Promise<void>;
  stderr(text: string): void | Promise<void>;
}

/** Dependencies of the exec service. */
export interface ExecServiceOptions {
  machines: MachineService;
  runtime: Runtime;
  templates: TemplateResolver;
}

/** Commands inside machines: the checks, the defaults, user look-up and activity around `Runtime.exec`. */
export class ExecService {
  constructor(private readonly o: ExecServiceOptions) {}

  /** Run a command to the end and return its output, each stream capped at 1 MiB. */
  async run(caller: Caller, id: string, req: ExecRequest, signal?: AbortSignal): Promise<ExecOutcome> {
    const stdout = new CappedBuffer(EXEC_OUTPUT_LIMIT_BYTES);
    const stderr = new CappedBuffer(EXEC_OUTPUT_LIMIT_BYTES);
    const io: ExecIo = { stdout: (c) => stdout.push(c), stderr: (c) => stderr.push(c) };
    const exit = await this.o.machines.timed('exec', () => this.execute(caller, id, req, io, () => undefined, signal));
    return {
      ...exit,
      stdout: stdout.text(),
      stderr: stderr.text(),
      stdoutTruncated: stdout.truncated,
      stderrTruncated: stderr.truncated,
    };
  }

  /** Run a command, handing its output to `sink` as it comes (no cap). */
  async stream(caller: Caller, id: string, req: ExecRequest, sink: ExecStreamSink, signal?: AbortSignal): Promise<ExecExit> {
    // One decoder per stream: a character split across two chunks is sent whole, in the later one.
    const out = new StringDecoder('utf8');
    const err = new StringDecoder('utf8');
    const send = (decoder: StringDecoder, to: (text: string) => void | Promise<void>, chunk: Buffer): void | Promise<void> => {
      const text = decoder.write(chunk);
      return text ? to(text) : undefined;
    };
    const io: ExecIo = {
      stdout: (c) => send(out, (t) => sink.stdout(t), c),
      stderr: (c) => send(err, (t) => sink.stderr(t), c),
    };
    const exit = await this.o.machines.timed('exec', () => this.execute(caller, id, req, io, () => sink.start(), signal));
    const outTail = out.end();
    if (outTail) await sink.stdout(outTail);
    const errTail = err.end();
    if (errTail) await sink.stderr(errTail);
    return exit;
  }

  private async execute(
    caller: Caller,
    id: string,
    req: ExecRequest,
    io: ExecIo,
    onStart: () => void,
    signal: AbortSignal | undefined,
  ): Promise<ExecExit> {
    const options: ExecOptions = {
      ...(await this.prepare(caller, id, req)),
      stdin: req.stdin === undefined ? undefined : Buffer.from(req.stdin, 'utf8'),
      timeoutMs: req.timeoutMs ?? DEFAULT_EXEC_TIMEOUT_MS,
      signal,
    };
    onStart();
    this.o.machines.touch(id);
    const keepActive = setInterval(() => this.o.machines.touch(id), ACTIVITY_EVERY_MS);
    keepActive.unref();
    const startedAt = performance.now();
    try {
      const r = await this.o.runtime.exec(id, options, io);
      return { exitCode: r.timedOut ? TIMED_OUT_EXIT_CODE : r.exitCode, durationMs: r.durationMs, timedOut: r.timedOut };
    } catch (err) {
      if (!(err instanceof ExecStartError)) throw err;
      if (err.failure === 'not_running') throw notRunning(id, (await this.o.machines.get(caller, id)).status);
      // Like a shell: 127 when there is no such command, 126 when it cannot be run (or its cwd is missing).
      await io.stderr(Buffer.from(`${err.message}\n`));
      return { exitCode: err.failure === 'not_found' ? 127 : 126, durationMs: Math.round(performance.now() - startedAt), timedOut: false };
    } finally {
      clearInterval(keepActive);
      this.o.machines.touch(id);
    }
  }

  /**
   * The checks and defaults every command in a machine gets (exec, background process,
   * pty): the machine must be running; argv, cwd, env and the user are resolved.
   */
  async prepare(caller: Caller, id: string, req: CommandRequest): Promise<PreparedCommand> {
    const m = await this.o.machines.getHere(caller, id);
    if (!allows(m.status, 'command')) throw notRunning(id, m.status);
    const template = await this.o.templates.ofRecord(m);
    // A template's `user` step makes its user the default; `root` or a uid is still asked for by name.
    const { uid, gid } = await this.resolveUser(id, req.user ?? template?.user);
    return {
      argv: typeof req.cmd === 'string' ? ['/bin/sh', '-c', req.cmd] : req.cmd,
      cwd: req.cwd ?? m.cwd ?? template?.cwd ?? '/',
      // The record's env, not only the container's: a warm-pool machine got its env at checkout, after it started.
      env: { ...m.env, ...req.env },
      uid,
      gid,
    };
  }

  /** `uid[:gid]` as given (gid 0 when omitted, as runc does), or a name looked up inside the machine. */
  private async resolveUser(id: string, user: string | undefined): Promise<{ uid: number; gid: number }> {
    if (user === undefined || user === 'root') return { uid: 0, gid: 0 };
    const numeric = /^(\d+)(?::(\d+))?$/.exec(user);
    if (numeric) return { uid: Number(numeric[1]), gid: Number(numeric[2] ?? 0) };
    // Asked inside the machine, never read from the host: its /etc/passwd could be a symlink to a host file.
    const [uid, gid] = await Promise.all([this.idOf(id, user, '-u'), this.idOf(id, user, '-g')]);
    return { uid, gid };
  }

  private async idOf(id: string, user: string, flag: '-u' | '-g'): Promise<number> {
    const out = new CappedBuffer(4096);
    const err = new CappedBuffer(4096);
    const options: ExecOptions = { argv: ['id', flag, user], cwd: '/', env: {}, uid: 0, gid: 0, timeoutMs: USER_LOOKUP_TIMEOUT_MS };
    let problem: string;
    try {
      const r = await this.o.runtime.exec(id, options, { stdout: (c) => out.push(c), stderr: (c) => err.push(c) });
      const value = out.text().trim();
      if (r.exitCode === 0 && /^\d+$/.test(value)) return Number(value);
      problem = err.text().trim() || `id exited with ${r.exitCode}`;
    } catch (e) {
      if (!(e instanceof ExecStartError)) throw e;
      if (e.failure === 'not_running') throw notRunning(id, 'not running');
      problem = `${e.message}; give a numeric uid[:gid] instead`;
    }
    throw validationError([{ field: 'user', message: `cannot be resolved inside machine ${id} (${problem})` }]);
  }
}

/** The 409 for a command sent to a machine that is not running. */
export function notRunning(id: string, status: string): HangarError {
  const hint = status === 'paused' ? ' Resume it first.' : '';
  return new HangarError('STATE_CONFLICT', `Machine ${id} is ${status}; commands run only in a running machine.${hint}`, { status });
}
