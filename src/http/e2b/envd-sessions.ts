/**
 * What envd knows of a sandbox's processes beyond Hangar's own services: the tag and the
 * command line each was started with (envd's List and Connect-by-tag report them), and the
 * terminals, whose output fans out to every connected client (Hangar's terminal session
 * has one reader). In-memory, like the processes and terminals themselves.
 */
import type { PtySession } from '../../service/pty-service.js';

/** A command line as envd reports it. */
export interface EnvdProcessConfig {
  cmd: string;
  args: string[];
  envs: Record<string, string>;
  cwd?: string;
}

/** A process or terminal started through envd. */
export interface EnvdProcess {
  pid: number;
  tag: string | undefined;
  config: EnvdProcessConfig;
  /** Set for a terminal. */
  pty: EnvdPty | null;
}

/** A terminal with its readers. */
export class EnvdPty {
  private readonly readers = new Set<(chunk: Buffer) => void>();

  constructor(readonly session: PtySession) {
    session.attach((chunk) => {
      for (const r of this.readers) r(chunk);
    });
  }

  /** Receive the output from now on; returns the function that stops it. */
  subscribe(reader: (chunk: Buffer) => void): () => void {
    this.readers.add(reader);
    return () => this.readers.delete(reader);
  }
}

/** The envd processes of every sandbox, by machine id and pid. */
export class EnvdSessions {
  private readonly byMachine = new Map<string, Map<number, EnvdProcess>>();

  /** Remember a started process; forgotten by `forget` once it exited. */
  add(machineId: string, p: EnvdProcess): void {
    let m = this.byMachine.get(machineId);
    if (!m) this.byMachine.set(machineId, (m = new Map()));
    m.set(p.pid, p);
  }

  /** A process by pid or tag. */
  find(machineId: string, selector: { pid?: number; tag?: string }): EnvdProcess | undefined {
    const m = this.byMachine.get(machineId);
    if (!m) return undefined;
    if (selector.pid !== undefined) return m.get(selector.pid);
    return [...m.values()].find((p) => p.tag !== undefined && p.tag === selector.tag);
  }

  /** Every remembered process of a machine. */
  all(machineId: string): EnvdProcess[] {
    return [...(this.byMachine.get(machineId)?.values() ?? [])];
  }

  /** Forget a process that exited. */
  forget(machineId: string, pid: number): void {
    const m = this.byMachine.get(machineId);
    m?.delete(pid);
    if (m && m.size === 0) this.byMachine.delete(machineId);
  }
}
