import { HangarError } from '../domain/errors.js';
import type { Caller } from '../domain/team.js';
import { ExecStartError, type ProcessHandle, type ProcessSignal, type Runtime } from '../runtime/runtime.js';
import { notRunning, TIMED_OUT_EXIT_CODE, type CommandRequest, type ExecService } from './exec-service.js';
import type { MachineService } from './machine-service.js';
import { OutputLog, type OutputSlice } from './process-output.js';
import { isLive } from '../domain/transitions.js';

/** Output kept per process (both streams together); older output is dropped. */
export const PROCESS_OUTPUT_LIMIT_BYTES = 1024 * 1024;
/** Exited processes kept per machine; the oldest are forgotten first. */
export const EXITED_PROCESSES_KEPT = 32;
/** Processes running at once per machine. */
export const RUNNING_PROCESSES_MAX = 64;
/** A running process keeps its machine active: it is touched this often. */
const ACTIVITY_EVERY_MS = 1_000;
/** How often the records of destroyed machines are looked for and dropped. */
const SWEEP_EVERY_MS = 10_000;

/** Lifecycle of a background process. */
export type ProcessStatus = 'running' | 'exited';

/** A background process as the service reports it. */
export interface ProcessInfo {
  pid: number;
  status: ProcessStatus;
  cmd: string[] | string;
  cwd: string;
  user: string;
  startedAt: number;
  endedAt: number | null;
  /** Null while running. */
  exitCode: number | null;
  /** The signal's name when exit_code is 128 + n for a known signal n, else null. */
  signal: string | null;
  timedOut: boolean;
  stdinOpen: boolean;
  /** Bytes of output so far (both streams), dropped ones included. */
  outputBytes: number;
}

/** A background process to start. */
export interface ProcessRequest extends CommandRequest {
  /** @default no limit */
  timeoutMs?: number;
  /** Written to stdin at once; stdin stays open unless `closeStdin`. */
  stdin?: string;
  /** Close stdin after `stdin` was written. @default false */
  closeStdin?: boolean;
}

/** Dependencies of the process service. */
export interface ProcessServiceOptions {
  machines: MachineService;
  runtime: Runtime;
  exec: ExecService;
}

/** What the service keeps of a process: what it reports (status, signal and bytes are derived), its output and its handle. */
interface ProcessEntry extends Omit<ProcessInfo, 'status' | 'signal' | 'outputBytes'> {
  machineId: string;
  output: OutputLog;
  /** Null once it has exited. */
  handle: ProcessHandle | null;
  /** Settles once it has exited and the entry is updated. */
  ended: Promise<void>;
}

interface MachineProcesses {
  /** Who started them: the sweep looks the machine up as this caller. */
  caller: Caller;
  byPid: Map<number, ProcessEntry>;
}

const SIGNAL_NUMBERS: Record<number, string> = { 1: 'HUP', 2: 'INT', 3: 'QUIT', 6: 'ABRT', 9: 'KILL', 10: 'USR1', 12: 'USR2', 13: 'PIPE', 14: 'ALRM', 15: 'TERM' };

/**
 * Background processes inside machines. The server owns their pipes: output is kept (up
 * to 1 MiB per process) whether or not anyone reads it, stdin stays open until closed.
 * This is in-memory state tied to the `runc exec` child processes of this server: the
 * processes end with a pause (like an exec), are killed by destroy, and are killed when
 * the server stops.
 */
export class ProcessService {
  private readonly machines = new Map<string, MachineProcesses>();
  private readonly sweeper: NodeJS.Timeout;
  private closing = false;

  constructor(private readonly o: ProcessServiceOptions) {
    this.sweeper = setInterval(() => void this.sweep(), SWEEP_EVERY_MS);
    this.sweeper.unref();
  }

  /** Start a process; resolves once it runs. A command that cannot be started is a 422. */
  async start(caller: Caller, id: string, req: ProcessRequest): Promise<ProcessInfo> {
    if (this.closing) throw new HangarError('NOT_READY', 'The server is shutting down.');
    const prepared = await this.o.exec.prepare(caller, id, req);
    const group = this.group(caller, id);
    const running = [...group.byPid.values()].filter((p) => p.handle !== null).length;
    if (running >= RUNNING_PROCESSES_MAX) {
      throw new HangarError('CAPACITY_EXCEEDED', `Machine ${id} already runs ${RUNNING_PROCESSES_MAX} background processes; wait for one to exit or kill one.`);
    }
    const output = new OutputLog(PROCESS_OUTPUT_LIMIT_BYTES);
    this.o.machines.touch(id);
    let handle: ProcessHandle;
    try {
      handle = await this.o.runtime.startProcess(
        id,
        { ...prepared, timeoutMs: req.timeoutMs },
        { stdout: (c) => output.push('stdout', c), stderr: (c) => output.push('stderr', c) },
      );
    } catch (err) {
      if (!(err instanceof ExecStartError)) throw err;
      if (err.failure === 'not_running') throw notRunning(id, (await this.o.machines.get(caller, id)).status);
      throw new HangarError('COMMAND_NOT_STARTED', `The command could not be started: ${err.message}`, { reason: err.failure });
    }
    const entry: ProcessEntry = {
      machineId: id,
      pid: handle.pid,
      cmd: req.cmd,
      cwd: prepared.cwd,
      user: req.user ?? 'root',
      startedAt: Date.now(),
      endedAt: null,
      exitCode: null,
      timedOut: false,
      stdinOpen: true,
      output,
      handle,
      ended: Promise.resolve(),
    };
    const keepActive = setInterval(() => this.o.machines.touch(id), ACTIVITY_EVERY_MS);
    keepActive.unref();
    entry.ended = handle.exited.then(
      (r) => {
        entry.exitCode = r.timedOut ? TIMED_OUT_EXIT_CODE : r.exitCode;
        entry.timedOut = r.timedOut;
      },
      () => {
        entry.exitCode = -1;
      },
    ).finally(() => {
      clearInterval(keepActive);
      entry.endedAt = Date.now();
      entry.handle = null;
      entry.stdinOpen = false;
      output.end();
      this.o.machines.touch(id);
    });
    // A pid inside the machine is reused only after the pid space wrapped: the new process wins.
    group.byPid.delete(handle.pid);
    group.byPid.set(handle.pid, entry);
    this.forgetOldExited(group);
    if (req.stdin !== undefined && req.stdin !== '') handle.write(Buffer.from(req.stdin, 'utf8'));
    if (req.closeStdin) this.closeStdinOf(entry);
    return describe(entry);
  }

  /** The machine's processes, oldest first (exited ones included, up to 32). */
  async list(caller: Caller, id: string): Promise<ProcessInfo[]> {
    await this.machine(caller, id);
    return [...(this.machines.get(id)?.byPid.values() ?? [])].sort((a, b) => a.startedAt - b.startedAt).map(describe);
  }

  /** One process. */
  async get(caller: Caller, id: string, pid: number): Promise<ProcessInfo> {
    return describe(await this.entry(caller, id, pid));
  }

  /** Wait until the process exits or `timeoutMs` passes (or `signal` aborts); answers its state then. */
  async wait(caller: Caller, id: string, pid: number, timeoutMs: number, signal?: AbortSignal): Promise<ProcessInfo> {
    const e = await this.entry(caller, id, pid);
    if (e.handle !== null) {
      let timer: NodeJS.Timeout | undefined;
      let onAbort: (() => void) | undefined;
      await Promise.race([
        e.ended,
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, timeoutMs);
          onAbort = resolve;
          signal?.addEventListener('abort', onAbort, { once: true });
        }),
      ]);
      clearTimeout(timer);
      if (onAbort) signal?.removeEventListener('abort', onAbort);
      this.o.machines.touch(id);
    }
    return describe(e);
  }

  /** Output from `offset` (bytes of both streams together) as far as it is kept. */
  async output(caller: Caller, id: string, pid: number, offset: number): Promise<{ info: ProcessInfo; slice: OutputSlice }> {
    const e = await this.entry(caller, id, pid);
    checkOffset(e, offset);
    return { info: describe(e), slice: e.output.read(offset) };
  }

  /**
   * Follow the output from `offset`: `send` gets each slice as it comes (awaited, so a
   * slow reader only falls behind and may miss dropped output, never holds the process),
   * and the exited process at the end. Stops early when `signal` aborts.
   */
  async follow(
    caller: Caller,
    id: string,
    pid: number,
    offset: number,
    send: (slice: OutputSlice) => Promise<void>,
    signal: AbortSignal,
  ): Promise<ProcessInfo | null> {
    const e = await this.entry(caller, id, pid);
    checkOffset(e, offset);
    let at = offset;
    const aborted = new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
    while (!signal.aborted) {
      const changed = e.output.changed();
      const slice = e.output.read(at, 64 * 1024);
      if (slice.chunks.length > 0 || slice.missed > 0) {
        await send(slice);
        at = slice.next;
        continue;
      }
      if (e.output.done) break;
      await Promise.race([changed, aborted]);
    }
    if (signal.aborted) return null;
    await e.ended;
    this.o.machines.touch(id);
    return describe(e);
  }

  /**
   * For the server's own processes (startup scripts): resolves once the process has
   * exited, with its final state and the last `tailBytes` of its output (both streams in
   * order). Reads the process as it is now, so it settles even after the machine is gone.
   */
  async outcome(id: string, pid: number, tailBytes: number): Promise<{ info: ProcessInfo; output: string }> {
    const e = this.machines.get(id)?.byPid.get(pid);
    if (!e) throw new Error(`machine ${id} has no process ${pid}`);
    await e.ended;
    const slice = e.output.read(Math.max(0, e.output.total - tailBytes));
    const bytes = Buffer.concat(slice.chunks.map((c) => c.data));
    // A byte cut can land inside a character: start at the next whole one.
    let start = 0;
    while (start < bytes.length && start < 3 && (bytes[start]! & 0xc0) === 0x80) start++;
    return { info: describe(e), output: bytes.subarray(start).toString('utf8') };
  }

  /** Send a signal to a running process's process group. */
  async signal(caller: Caller, id: string, pid: number, sig: ProcessSignal): Promise<ProcessInfo> {
    const e = await this.running(caller, id, pid);
    e.handle!.signal(sig);
    return describe(e);
  }

  /** Write to a running process's stdin, then close it when asked. */
  async writeStdin(caller: Caller, id: string, pid: number, data: Buffer, close: boolean): Promise<ProcessInfo> {
    const e = await this.running(caller, id, pid);
    if (data.length > 0) {
      if (!e.stdinOpen) throw new HangarError('STATE_CONFLICT', `The stdin of process ${pid} is closed.`, { status: 'stdin_closed' });
      const outcome = e.handle!.write(data);
      if (outcome === 'closed') throw new HangarError('STATE_CONFLICT', `The stdin of process ${pid} is closed.`, { status: 'stdin_closed' });
      if (outcome === 'full') {
        throw new HangarError('STATE_CONFLICT', `Process ${pid} is not reading its stdin fast enough (4 MiB are waiting); retry later.`, { status: 'stdin_full' });
      }
    }
    if (close) this.closeStdinOf(e);
    return describe(e);
  }

  /** Kill every process (server shutdown) and wait for them to end. */
  async close(): Promise<void> {
    this.closing = true;
    clearInterval(this.sweeper);
    const ending: Array<Promise<void>> = [];
    for (const group of this.machines.values()) {
      for (const e of group.byPid.values()) {
        e.handle?.kill();
        ending.push(e.ended);
      }
    }
    await Promise.all(ending);
  }

  /** Processes of a machine that is now paused or destroyed have ended with it; drop a destroyed machine's records. */
  private async sweep(): Promise<void> {
    for (const [id, group] of this.machines) {
      if ([...group.byPid.values()].some((e) => e.handle !== null)) continue;
      const status = await this.o.machines.get(group.caller, id).then((m) => m.status, () => 'destroyed' as const);
      if (!isLive(status)) this.machines.delete(id);
    }
  }

  private closeStdinOf(e: ProcessEntry): void {
    e.stdinOpen = false;
    e.handle?.closeStdin();
  }

  private group(caller: Caller, id: string): MachineProcesses {
    let group = this.machines.get(id);
    if (!group) {
      group = { caller, byPid: new Map() };
      this.machines.set(id, group);
    }
    return group;
  }

  private forgetOldExited(group: MachineProcesses): void {
    const exited = [...group.byPid.values()].filter((e) => e.handle === null).sort((a, b) => a.startedAt - b.startedAt);
    for (const e of exited.slice(0, Math.max(0, exited.length - EXITED_PROCESSES_KEPT))) group.byPid.delete(e.pid);
  }

  /** The machine, counted as activity; a destroyed machine's processes are gone (404). */
  private async machine(caller: Caller, id: string): Promise<void> {
    const m = await this.o.machines.get(caller, id);
    if (!isLive(m.status)) {
      this.machines.delete(id);
      throw new HangarError('NOT_FOUND', `Machine ${id} is destroyed; its processes were killed with it.`);
    }
    await this.o.machines.assertHere(m);
    this.o.machines.touch(id);
  }

  private async entry(caller: Caller, id: string, pid: number): Promise<ProcessEntry> {
    await this.machine(caller, id);
    const e = this.machines.get(id)?.byPid.get(pid);
    if (!e) {
      throw new HangarError('NOT_FOUND', `Machine ${id} has no background process ${pid} (only processes started through this API are listed, up to ${EXITED_PROCESSES_KEPT} exited ones).`);
    }
    return e;
  }

  private async running(caller: Caller, id: string, pid: number): Promise<ProcessEntry> {
    const e = await this.entry(caller, id, pid);
    if (e.handle === null) throw new HangarError('STATE_CONFLICT', `Process ${pid} has exited (exit code ${e.exitCode}).`, { status: 'exited' });
    return e;
  }
}

function checkOffset(e: ProcessEntry, offset: number): void {
  if (offset > e.output.total) {
    throw new HangarError('VALIDATION_FAILED', `Invalid request. offset: is past the end of the output (${e.output.total} bytes so far)`, {
      fields: [{ field: 'offset', message: `must be at most ${e.output.total}` }],
    });
  }
}

function describe(e: ProcessEntry): ProcessInfo {
  const code = e.exitCode;
  return {
    pid: e.pid,
    status: e.handle === null ? 'exited' : 'running',
    cmd: e.cmd,
    cwd: e.cwd,
    user: e.user,
    startedAt: e.startedAt,
    endedAt: e.endedAt,
    exitCode: e.handle === null ? code : null,
    signal: e.handle === null && code !== null && !e.timedOut && code > 128 ? (SIGNAL_NUMBERS[code - 128] ?? null) : null,
    timedOut: e.timedOut,
    stdinOpen: e.stdinOpen,
    outputBytes: e.output.total,
  };
}
