/**
 * envd's `process.Process` service over Hangar's background processes (ProcessService)
 * and terminals (PtyService): Start, Connect, List, SendInput, SendSignal, CloseStdin,
 * Update. Pids are the pids inside the machine, the same the native API shows.
 */
import type { ProcessInfo, ProcessService } from '../../service/process-service.js';
import type { PtyService } from '../../service/pty-service.js';
import { ConnectError, type ConnectStream } from './connect-wire.js';
import { EnvdPty, type EnvdProcess, type EnvdSessions } from './envd-sessions.js';
import type { EnvdTarget } from './envd-target.js';
import { parseMessage, SelectorRequest, SendInputRequest, SendSignalRequest, StartRequest, UpdateRequest } from './schemas.js';
import type { z } from 'zod';

/** What the process service of envd needs. */
export interface EnvdProcessOptions {
  processes: ProcessService;
  pty: PtyService;
  sessions: EnvdSessions;
}

/**
 * The SDK starts everything with `/bin/bash`; templates without bash (`base` is busybox)
 * run the same arguments with `/bin/sh` instead, so commands and terminals work on every
 * template. The check runs inside the machine, as part of the command.
 */
const BASH_OR_SH = 'if [ -x /bin/bash ]; then exec /bin/bash "$@"; else exec /bin/sh "$@"; fi';

function argvOf(cmd: string, args: string[]): string[] {
  return cmd === '/bin/bash' || cmd === 'bash' ? ['/bin/sh', '-c', BASH_OR_SH, 'sh', ...args] : [cmd, ...args];
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

function encodeData(kind: 'stdout' | 'stderr' | 'pty', data: Buffer): unknown {
  return { event: { data: { [kind]: data.toString('base64') } } };
}

const SIGNAL_STATUS: Record<string, string> = { KILL: 'killed', TERM: 'terminated', INT: 'interrupt', HUP: 'hangup' };

/** envd's end event: Go's exit status text, and -1 for a process a signal ended (as Go reports it). */
function endEvent(exitCode: number | null, signal: string | null): unknown {
  if (signal !== null) return { event: { end: { exitCode: -1, exited: false, status: `signal: ${SIGNAL_STATUS[signal] ?? signal.toLowerCase()}` } } };
  const code = exitCode ?? -1;
  return { event: { end: { exitCode: code, exited: true, status: `exit status ${code}` } } };
}

type Selector = z.output<typeof SelectorRequest>['process'];

/** The process service of envd for one request's sandbox. */
export class EnvdProcessService {
  constructor(private readonly o: EnvdProcessOptions) {}

  /** process.Process/Start: start, then stream its output and its end. */
  async start(t: EnvdTarget, message: unknown, stream: ConnectStream, keepaliveMs: number): Promise<void> {
    const req = parseMessage(StartRequest, message);
    const id = t.machine.id;
    const config = { cmd: req.process.cmd, args: req.process.args, envs: req.process.envs, cwd: req.process.cwd };
    if (req.pty) {
      // A terminal takes a shell string (PtyService): the variables are exported by it, so their names must be plain.
      for (const k of Object.keys(req.process.envs)) {
        if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) throw new ConnectError('invalid_argument', `Environment variable name ${JSON.stringify(k)} is not valid.`);
      }
      const exports = Object.entries(req.process.envs).map(([k, v]) => `export ${k}=${shellQuote(v)}; `).join('');
      const command = `${exports}exec ${argvOf(req.process.cmd, req.process.args).map(shellQuote).join(' ')}`;
      const session = await this.o.pty.start(t.caller, id, { cmd: command, cwd: req.process.cwd, user: t.user, cols: req.pty.size.cols || 80, rows: req.pty.size.rows || 24 });
      const p: EnvdProcess = { pid: session.pid, tag: req.tag, config, pty: new EnvdPty(session) };
      this.o.sessions.add(id, p);
      void session.exited.finally(() => this.o.sessions.forget(id, p.pid));
      await stream.send({ event: { start: { pid: p.pid } } });
      await this.followPty(p, stream, keepaliveMs);
      return;
    }
    const info = await this.o.processes.start(t.caller, id, {
      cmd: argvOf(req.process.cmd, req.process.args),
      cwd: req.process.cwd,
      env: req.process.envs,
      user: t.user,
      // envd gives a process stdin only when asked; without it the process reads end-of-file.
      closeStdin: req.stdin !== true,
    });
    const p: EnvdProcess = { pid: info.pid, tag: req.tag, config, pty: null };
    this.o.sessions.add(id, p);
    await stream.send({ event: { start: { pid: info.pid } } });
    await this.followProcess(t, p, 0, stream, keepaliveMs);
  }

  /** process.Process/Connect: stream a running process's output from now on, and its end. */
  async connect(t: EnvdTarget, message: unknown, stream: ConnectStream, keepaliveMs: number): Promise<void> {
    const req = parseMessage(SelectorRequest, message);
    const p = await this.find(t, req.process);
    await stream.send({ event: { start: { pid: p.pid } } });
    if (p.pty) await this.followPty(p, stream, keepaliveMs);
    else await this.followProcess(t, p, (await this.o.processes.get(t.caller, t.machine.id, p.pid)).outputBytes, stream, keepaliveMs);
  }

  /** process.Process/List: the running processes and terminals. */
  async list(t: EnvdTarget): Promise<unknown> {
    const running = new Set((await this.o.processes.list(t.caller, t.machine.id)).filter((i) => i.status === 'running').map((i) => i.pid));
    const all = this.o.sessions.all(t.machine.id).filter((p) => {
      if (p.pty !== null || running.has(p.pid)) return true;
      // Ended while nobody followed it: forget it now.
      this.o.sessions.forget(t.machine.id, p.pid);
      return false;
    });
    return { processes: all.map((p) => ({ config: p.config, pid: p.pid, ...(p.tag === undefined ? {} : { tag: p.tag }) })) };
  }

  /** process.Process/SendInput. */
  async sendInput(t: EnvdTarget, message: unknown): Promise<unknown> {
    const req = parseMessage(SendInputRequest, message);
    const p = await this.find(t, req.process);
    const data = 'stdin' in req.input ? req.input.stdin : req.input.pty;
    if (p.pty) p.pty.session.write(data);
    else await this.o.processes.writeStdin(t.caller, t.machine.id, p.pid, data, false);
    return {};
  }

  /** process.Process/CloseStdin. */
  async closeStdin(t: EnvdTarget, message: unknown): Promise<unknown> {
    const req = parseMessage(SelectorRequest, message);
    const p = await this.find(t, req.process);
    if (p.pty) throw new ConnectError('failed_precondition', `Process ${p.pid} runs on a terminal; send it Ctrl-D (\\x04) as input instead.`);
    await this.o.processes.writeStdin(t.caller, t.machine.id, p.pid, Buffer.alloc(0), true);
    return {};
  }

  /** process.Process/SendSignal (SIGTERM or SIGKILL, to the process group). */
  async sendSignal(t: EnvdTarget, message: unknown): Promise<unknown> {
    const req = parseMessage(SendSignalRequest, message);
    const p = await this.find(t, req.process);
    const kill = req.signal === 'SIGNAL_SIGKILL' || req.signal === 9;
    // A terminal is ended with its session (Hangar's terminals are killed, not signalled), for either signal.
    if (p.pty) p.pty.session.detach(false);
    else await this.o.processes.signal(t.caller, t.machine.id, p.pid, kill ? 'KILL' : 'TERM');
    return {};
  }

  /** process.Process/Update: resize a terminal. */
  async update(t: EnvdTarget, message: unknown): Promise<unknown> {
    const req = parseMessage(UpdateRequest, message);
    const p = await this.find(t, req.process);
    if (req.pty) {
      if (!p.pty) throw new ConnectError('failed_precondition', `Process ${p.pid} has no terminal to resize.`);
      p.pty.session.resize(req.pty.size.cols, req.pty.size.rows);
    }
    return {};
  }

  private async find(t: EnvdTarget, selector: Selector): Promise<EnvdProcess> {
    const p = this.o.sessions.find(t.machine.id, selector);
    if (p && (p.pty !== null || (await this.isRunning(t, p.pid)))) return p;
    if (p) this.o.sessions.forget(t.machine.id, p.pid);
    if ('pid' in selector) {
      // Started elsewhere (the native API): still a process of this machine.
      const info = await this.o.processes.get(t.caller, t.machine.id, selector.pid).catch(() => null);
      if (info && info.status === 'running') return { pid: info.pid, tag: undefined, config: configOf(info), pty: null };
    }
    throw new ConnectError('not_found', `No running process ${'pid' in selector ? `with pid ${selector.pid}` : `tagged ${JSON.stringify(selector.tag)}`} in sandbox ${t.machine.id}.`);
  }

  private async isRunning(t: EnvdTarget, pid: number): Promise<boolean> {
    const info = await this.o.processes.get(t.caller, t.machine.id, pid).catch(() => null);
    return info !== null && info.status === 'running';
  }

  private async followProcess(t: EnvdTarget, p: EnvdProcess, offset: number, stream: ConnectStream, keepaliveMs: number): Promise<void> {
    const keepalive = setInterval(() => void stream.send({ event: { keepalive: {} } }), keepaliveMs);
    try {
      const info = await this.o.processes.follow(
        t.caller,
        t.machine.id,
        p.pid,
        offset,
        async (slice) => {
          for (const c of slice.chunks) await stream.send(encodeData(c.stream, c.data));
        },
        stream.closed.signal,
      );
      if (info === null) return;
      this.o.sessions.forget(t.machine.id, p.pid);
      await stream.send(endEvent(info.exitCode, info.signal));
    } finally {
      clearInterval(keepalive);
    }
  }

  private async followPty(p: EnvdProcess, stream: ConnectStream, keepaliveMs: number): Promise<void> {
    const pty = p.pty!;
    const keepalive = setInterval(() => void stream.send({ event: { keepalive: {} } }), keepaliveMs);
    const stop = pty.subscribe((chunk) => void stream.send(encodeData('pty', chunk)));
    try {
      const closed = new Promise<null>((resolve) => stream.closed.signal.addEventListener('abort', () => resolve(null), { once: true }));
      const exit = await Promise.race([pty.session.exited, closed]);
      if (exit === null) return;
      const code = exit.exitCode;
      await stream.send(code !== null && code > 128 ? endEvent(null, signalName(code - 128)) : endEvent(code, null));
    } finally {
      stop();
      clearInterval(keepalive);
    }
  }
}

function signalName(n: number): string {
  return ({ 1: 'HUP', 2: 'INT', 9: 'KILL', 15: 'TERM' } as Record<number, string>)[n] ?? `signal ${n}`;
}

function configOf(info: ProcessInfo): EnvdProcess['config'] {
  const argv = typeof info.cmd === 'string' ? ['/bin/sh', '-c', info.cmd] : info.cmd;
  return { cmd: argv[0] ?? '', args: argv.slice(1), envs: {}, cwd: info.cwd };
}
