import { HangarError, machineNotFound } from '../domain/errors.js';
import type { Caller } from '../domain/team.js';
import { allows, isLive } from '../domain/transitions.js';
import { AGENT_BINARY_IN_MACHINE } from '../runtime/agent/protocol.js';
import { ExecStartError, type Runtime } from '../runtime/runtime.js';
import { CappedBuffer } from './capped-buffer.js';
import type { MachineService } from './machine-service.js';

/** What changed in a watched directory. `overflow`: the kernel dropped events; list the directory again. */
export type FileWatchEventType = 'create' | 'write' | 'remove' | 'rename' | 'overflow';
export const FILE_WATCH_EVENT_TYPES: readonly FileWatchEventType[] = ['create', 'write', 'remove', 'rename', 'overflow'];

/** One change, with the absolute path inside the machine. */
export interface FileWatchEvent {
  type: FileWatchEventType;
  path: string;
}

/** How a watch ended. */
export type FileWatchEnd = 'cancelled' | 'directory_gone' | 'machine_stopped';

/** Options of the file watch service. */
export interface FileWatchServiceOptions {
  machines: MachineService;
  runtime: Runtime;
}

/** The watcher's exit statuses (agent/src/watch.h). */
const WATCH_EXIT = { notFound: 3, notDirectory: 5 } as const;

/**
 * Watches on directories inside running machines: inotify in the machine, through the
 * agent's `hangar-agent watch` (paths are resolved by the machine's kernel, as every file
 * operation's are). A watch is not activity: it does not keep a machine from its
 * inactivity timeout.
 */
export class FileWatchService {
  constructor(private readonly o: FileWatchServiceOptions) {}

  /**
   * Check the machine and the directory, then report changes to `onEvent` until `signal`
   * aborts, the directory itself goes, or the machine stops. `onStarted` is told once the
   * watch is in place (before it, failures are thrown as the catalogue's errors).
   */
  async watch(
    caller: Caller,
    id: string,
    path: string,
    recursive: boolean,
    handlers: { onStarted: () => void; onEvent: (e: FileWatchEvent) => void | Promise<void> },
    signal: AbortSignal,
  ): Promise<FileWatchEnd> {
    const m = await this.o.machines.get(caller, id);
    if (!isLive(m.status)) throw machineNotFound(id);
    await this.o.machines.assertHere(m);
    if (!allows(m.status, 'command')) {
      throw new HangarError('STATE_CONFLICT', `Machine ${id} is ${m.status}; files can be watched only in a running machine.`, { status: m.status });
    }
    if (!(await this.o.runtime.hasAgent(id))) {
      throw new HangarError('UNSUPPORTED_OPERATION', `Machine ${id} was started before this server had the in-machine agent; restart it (its files are kept) to watch files.`);
    }
    let rest = '';
    const stderr = new CappedBuffer(4096);
    let started = false;
    let handle;
    try {
      handle = await this.o.runtime.startProcess(
        id,
        { argv: [AGENT_BINARY_IN_MACHINE, 'watch', path, recursive ? '1' : '0'], cwd: '/', env: {}, uid: 0, gid: 0 },
        {
          stdout: async (chunk) => {
            if (!started) {
              started = true;
              handlers.onStarted();
            }
            rest += chunk.toString('utf8');
            const lines = rest.split('\n');
            rest = lines.pop() ?? '';
            for (const line of lines) {
              const event = parseWatchLine(line);
              if (event) await handlers.onEvent(event);
            }
          },
          stderr: (chunk) => stderr.push(chunk),
        },
      );
    } catch (err) {
      if (err instanceof ExecStartError && err.failure === 'not_running') throw machineStopped(id);
      throw err;
    }
    const onAbort = (): void => handle.kill();
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
    // The watcher prints nothing until something changes: a bad path shows as an early exit.
    const early = await Promise.race([handle.exited, new Promise<null>((r) => setTimeout(() => r(null), 50))]);
    if (early && !signal.aborted) {
      signal.removeEventListener('abort', onAbort);
      if (early.exitCode === WATCH_EXIT.notFound) throw new HangarError('PATH_NOT_FOUND', `Cannot watch ${path}: no such directory in machine ${id}.`, { path });
      if (early.exitCode === WATCH_EXIT.notDirectory) throw new HangarError('NOT_A_DIRECTORY', `Cannot watch ${path}: it is not a directory in machine ${id}.`, { path });
      if (early.exitCode !== 0) {
        throw new HangarError('FILE_OPERATION_FAILED', `Cannot watch ${path} in machine ${id}: ${stderr.text().trim() || `exit ${early.exitCode}`}.`, { path });
      }
    }
    if (!started) {
      started = true;
      handlers.onStarted();
    }
    const result = await handle.exited;
    signal.removeEventListener('abort', onAbort);
    if (signal.aborted) return 'cancelled';
    return result.exitCode === 0 ? 'directory_gone' : 'machine_stopped';
  }
}

function machineStopped(id: string): HangarError {
  return new HangarError('STATE_CONFLICT', `Machine ${id} is no longer running; files can be watched only in a running machine.`, { status: 'not running' });
}

/** One line of `hangar-agent watch` (`KIND\tPATH`, with \\ \t \n escaped in PATH); null when it is not one. */
export function parseWatchLine(line: string): FileWatchEvent | null {
  const tab = line.indexOf('\t');
  if (tab < 0) return null;
  const type = line.slice(0, tab) as FileWatchEventType;
  if (!FILE_WATCH_EVENT_TYPES.includes(type)) return null;
  const path = line.slice(tab + 1).replace(/\\(.)/g, (_, c: string) => (c === 't' ? '\t' : c === 'n' ? '\n' : c));
  return { type, path };
}
