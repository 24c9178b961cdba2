import { HangarError } from '../domain/errors.js';
import { newMachineEventId, type MachineEventRecord } from '../domain/machine-event.js';
import type { MachineRecord } from '../domain/machine.js';
import { STARTUP_SCRIPT_OUTPUT_KEPT } from '../domain/startup-script.js';
import type { Caller } from '../domain/team.js';
import type { Store } from '../store/store.js';
import type { ServiceLogger } from './machine-core.js';
import type { ProcessInfo, ProcessService } from './process-service.js';

/**
 * Which start a machine just made: its `create`, a Paperspace-style `start` (from
 * stopped), or a `restart`. A resume from pause is none of them: the machine's processes
 * (a running script included) come back as they were, so nothing runs again.
 */
export type MachineStartKind = 'create' | 'start' | 'restart';

/** Dependencies of the startup script runner. */
export interface StartupScriptRunsOptions {
  store: Store;
  processes: ProcessService;
  log: ServiceLogger;
  /** @default Date.now */
  now?: () => number;
}

/**
 * Runs machines' startup scripts after their starts, each as a background process (its
 * output kept and readable as any process's: GET /v1/machines/{id}/processes/{pid}/output),
 * recorded as a `startup-script` event that ends with the exit code and the end of the
 * output. A run-once script runs after the machine's first start only (the first one
 * that recorded a run); any other after every start. A script that fails, or cannot be
 * started, fails its event, never the machine or the start.
 */
export class StartupScriptRuns {
  /** Per machine, the decision in progress: two starts racing never both run a run-once script. */
  private readonly deciding = new Map<string, Promise<unknown>>();
  /** Runs being followed to their end (awaited by `drain`). */
  private readonly following = new Set<Promise<void>>();
  private readonly now: () => number;

  constructor(private readonly o: StartupScriptRunsOptions) {
    this.now = o.now ?? Date.now;
  }

  /**
   * After machine `m` started as `kind`: run its script when that start calls for it.
   * Returns the run's event (null when nothing runs); never throws.
   */
  async afterStart(caller: Caller, m: MachineRecord, kind: MachineStartKind): Promise<MachineEventRecord | null> {
    if (m.startupScript === null || m.status !== 'running') return null;
    const before = this.deciding.get(m.id) ?? Promise.resolve();
    const run = before.then(() => this.runIfDue(caller, m, kind));
    const settled = run.catch(() => undefined);
    this.deciding.set(m.id, settled);
    void settled.then(() => {
      if (this.deciding.get(m.id) === settled) this.deciding.delete(m.id);
    });
    return run.catch((err: unknown) => {
      this.o.log.error({ machine: m.id, err }, 'startup script run could not be recorded');
      return null;
    });
  }

  /** Wait for every followed run to record its end (server shutdown, after the processes were killed). */
  async drain(): Promise<void> {
    while (this.following.size > 0) await Promise.allSettled([...this.following]);
  }

  private async runIfDue(caller: Caller, m: MachineRecord, kind: MachineStartKind): Promise<MachineEventRecord | null> {
    const script = m.startupScript!;
    const ran = (await this.o.store.listMachineEvents({ teamId: m.teamId, machineId: m.id, name: 'startup-script', order: 'asc', limit: 1 })).length > 0;
    // A create that ran it already is a retried create (same Idempotency-Key): not a new start.
    if (ran && (kind === 'create' || script.runOnce)) return null;
    const at = this.now();
    const e: MachineEventRecord = {
      id: newMachineEventId(),
      teamId: m.teamId,
      machineId: m.id,
      name: 'startup-script',
      state: 'in progress',
      error: null,
      createdAt: at,
      startedAt: at,
      finishedAt: null,
      startupScript: null,
    };
    let info: ProcessInfo;
    try {
      info = await this.o.processes.start(caller, m.id, { cmd: ['/bin/sh', '-c', script.script], closeStdin: true });
    } catch (err) {
      // Recorded so that a run-once script is not tried again at every start, and the client sees why.
      const why = err instanceof HangarError ? err.message : 'the server could not start it';
      if (!(err instanceof HangarError)) this.o.log.error({ machine: m.id, err }, 'startup script could not be started');
      Object.assign(e, { state: 'error', error: `The startup script could not be started: ${why}`, finishedAt: this.now() });
      await this.o.store.insertMachineEvent(e);
      return e;
    }
    e.startupScript = { pid: info.pid, exitCode: null, output: '', outputBytes: 0 };
    await this.o.store.insertMachineEvent(e);
    const recorded = { ...e, startupScript: { ...e.startupScript } };
    const follow = this.follow(e);
    this.following.add(follow);
    void follow.finally(() => this.following.delete(follow));
    return recorded;
  }

  /** Record the run's end: its exit code and output, `done` on 0, `error` otherwise. */
  private async follow(e: MachineEventRecord): Promise<void> {
    const pid = e.startupScript!.pid;
    try {
      const { info, output } = await this.o.processes.outcome(e.machineId, pid, STARTUP_SCRIPT_OUTPUT_KEPT);
      e.startupScript = { pid, exitCode: info.exitCode, output, outputBytes: info.outputBytes };
      e.state = info.exitCode === 0 ? 'done' : 'error';
      e.error = info.exitCode === 0 ? null : failure(info);
    } catch (err) {
      this.o.log.error({ machine: e.machineId, err }, 'startup script end not known');
      e.state = 'error';
      e.error = 'The startup script\'s end could not be followed.';
    }
    e.finishedAt = this.now();
    await this.o.store.updateMachineEvent(e).catch((err: unknown) => this.o.log.error({ event: e.id, err }, 'could not record the end of a startup script'));
  }
}

/** The sentence of a run that did not exit 0. */
function failure(info: ProcessInfo): string {
  if (info.timedOut) return 'The startup script was killed at its timeout.';
  if (info.signal !== null) return `The startup script was killed by SIG${info.signal} (exit code ${info.exitCode}): the machine stopped, restarted or was destroyed while it ran, or something killed it.`;
  if (info.exitCode === -1) return 'The startup script ended without an exit status: the machine stopped, restarted or was destroyed while it ran.';
  return `The startup script exited with code ${info.exitCode}.`;
}
