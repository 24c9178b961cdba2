/**
 * Build logs: every line a build writes, numbered from 1, kept in a file per build
 * (`<data>/template-builds/<build id>.log`) and handed to live readers as it comes, so a
 * reader can follow a build and resume after line N (SSE `Last-Event-ID`).
 */
import { appendFileSync, mkdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

/** One line of a build's log. */
export interface LogEntry {
  n: number;
  line: string;
}

type Listener = (e: LogEntry | null) => void;

/** The longest line kept; longer ones are cut (a progress bar without newlines). */
const MAX_LINE = 4096;

export class BuildLogs {
  private readonly live = new Map<string, { count: number; listeners: Set<Listener> }>();

  constructor(private readonly dir: string) {}

  private file(buildId: string): string {
    return join(this.dir, `${buildId}.log`);
  }

  /** Start a build's log (empty). */
  open(buildId: string): void {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    appendFileSync(this.file(buildId), '');
    this.live.set(buildId, { count: 0, listeners: new Set() });
  }

  /** Append a line: to the file, then to every live reader. */
  write(buildId: string, line: string): void {
    const state = this.live.get(buildId);
    if (!state) return;
    const text = line.length > MAX_LINE ? `${line.slice(0, MAX_LINE)}…` : line;
    appendFileSync(this.file(buildId), `${text.replace(/\n/g, ' ')}\n`);
    state.count++;
    const entry = { n: state.count, line: text };
    for (const l of state.listeners) l(entry);
  }

  /** The build ended: live readers get the end (null) and the log is only a file now. */
  close(buildId: string): void {
    const state = this.live.get(buildId);
    if (!state) return;
    this.live.delete(buildId);
    for (const l of state.listeners) l(null);
  }

  /** Whether the build is still writing. */
  isLive(buildId: string): boolean {
    return this.live.has(buildId);
  }

  /** The whole log as text ('' when there is none). */
  text(buildId: string): Promise<string> {
    return readFile(this.file(buildId), 'utf8').catch(() => '');
  }

  /**
   * Lines after `after`, then (while the build runs) each new one as it is written, then
   * null at the end. Returns a function that stops the following.
   */
  async follow(buildId: string, after: number, onEntry: Listener): Promise<() => void> {
    const state = this.live.get(buildId);
    let last = after;
    const deliver: Listener = (e) => {
      if (e === null) onEntry(null);
      else if (e.n > last) {
        last = e.n;
        onEntry(e);
      }
    };
    // Listen first, then read the file; what arrives meanwhile waits, and numbers drop the lines seen twice.
    let pending: (LogEntry | null)[] | null = [];
    const relay: Listener = (e) => (pending ? pending.push(e) : deliver(e));
    state?.listeners.add(relay);
    const lines = (await this.text(buildId)).split('\n');
    lines.pop();
    for (let i = after; i < lines.length; i++) deliver({ n: i + 1, line: lines[i]! });
    const queued = pending;
    pending = null;
    for (const e of queued) deliver(e);
    if (!state) deliver(null);
    return () => state?.listeners.delete(relay);
  }
}
