/**
 * The server's side of the in-machine agent: one unix socket per machine, which the
 * server listens on in a host directory of that machine's own. The machine sees that
 * directory read-only (`/.hangar/run`), so nothing inside it can replace the socket or
 * point the server elsewhere; the agent connects out to it and keeps one idle
 * connection waiting. A session takes an idle connection (the agent then connects a new
 * one), sends one command and reads its frames until the command exits; when the agent
 * said it goes on, the connection is given back and the next session reuses it, with no
 * new connection or process in the machine.
 *
 * Around a checkpoint the server closes the socket and every connection (CRIU cannot
 * dump a socket whose peer is outside the machine), and opens it again after the
 * restore; the agent reconnects by itself, and a SIGUSR1 makes it try at once.
 */
import { chown, mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { readUidBase } from '../user-namespace.js';
import { AGENT_BINARY_IN_MACHINE, AGENT_SOCKET_NAME, AGENT_VERSION, FRAME, FrameDecoder, parseStrings, type Frame } from './protocol.js';

/** A connection to a machine's agent, lent to one session at a time. */
export interface AgentConnection {
  readonly socket: Socket;
  /**
   * The session is over and the agent waits for the next request on it (its last frame
   * said so): the connection goes back to the machine's idle ones. The session has
   * removed its own listeners and must not touch the socket after this.
   */
  giveBack(): void;
}

/** Idle connections kept per machine; more are closed (the agent keeps one). */
const IDLE_MAX = 4;
/** Connections per machine at most, sessions included: a machine cannot exhaust the server's descriptors. */
const CONNECTIONS_MAX = 256;
/**
 * Connections per machine that have not said hello yet. Anything inside the machine can
 * connect (the socket is visible, read-only); this bounds what it can hold open that way.
 */
const UNGREETED_MAX = 8;
/** A connection must say hello within this long. */
const HELLO_TIMEOUT_MS = 2_000;
/** Around a checkpoint, connections get this long to close from the agent's side. */
const QUIESCE_TIMEOUT_MS = 2_000;

/** Minimal logger (pino's shape). */
export interface AgentHostLogger {
  warn(obj: object, msg: string): void;
}

/** One machine's socket and its connections. */
class AgentEndpoint {
  private server: Server | null = null;
  /** The listen in progress: concurrent callers share it (two would race for the socket path). */
  private listening: Promise<void> | null = null;
  private readonly idle: Socket[] = [];
  private readonly waiters: ((s: Socket | null) => void)[] = [];
  private readonly sockets = new Set<Socket>();
  private ungreeted = 0;
  /** When the agent last said hello: a machine whose agent never did is not waited for long. */
  helloAt: number | null = null;

  constructor(
    readonly id: string,
    private readonly socketPath: string,
    private readonly log: AgentHostLogger,
    /** Told when the agent closed its idle connection: it died (a normal agent never does). */
    private readonly onLost: () => void,
  ) {}

  /** Listen (again), replacing a stale socket file. */
  listen(): Promise<void> {
    if (this.server) return Promise.resolve();
    this.listening ??= this.startListening().finally(() => {
      this.listening = null;
    });
    return this.listening;
  }

  private async startListening(): Promise<void> {
    await rm(this.socketPath, { force: true });
    const server = createServer((s) => this.accept(s));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.socketPath, () => {
        server.off('error', reject);
        resolve();
      });
    });
    // In a user-namespaced machine the agent is no host root: the socket is made its root's to connect to.
    const base = await readUidBase(dirname(dirname(this.socketPath)));
    if (base !== null) await chown(this.socketPath, base, base);
    // A listener error after start (none is expected) must not crash the server.
    server.on('error', (err) => this.log.warn({ machine: this.id, err }, 'agent socket failed'));
    this.server = server;
  }

  private accept(s: Socket): void {
    if (this.sockets.size >= CONNECTIONS_MAX || this.ungreeted >= UNGREETED_MAX || !this.server) {
      s.destroy();
      return;
    }
    this.sockets.add(s);
    this.ungreeted++;
    let greeted = false;
    const greet = (): void => {
      if (!greeted) this.ungreeted--;
      greeted = true;
    };
    s.once('close', () => {
      greet();
      this.sockets.delete(s);
      const at = this.idle.indexOf(s);
      if (at >= 0) {
        this.idle.splice(at, 1);
        // Only the server ends idle connections (quiesce stops listening first): the agent is gone.
        if (this.server && this.idle.length === 0) {
          this.helloAt = null;
          this.onLost();
        }
      }
    });
    s.on('error', () => s.destroy()); // closes it: 'close' above cleans up
    const timer = setTimeout(() => s.destroy(), HELLO_TIMEOUT_MS);
    const decoder = new FrameDecoder(
      (f: Frame) => {
        clearTimeout(timer);
        greet();
        s.removeAllListeners('data');
        // Anything but a hello, or anything after it before a request, is not the agent speaking.
        if (f.type !== FRAME.hello || parseStrings(f.payload)[0] !== AGENT_VERSION) {
          s.destroy();
          return;
        }
        this.helloAt = Date.now();
        this.keepIdle(s);
      },
      () => s.destroy(),
    );
    s.on('data', (chunk: Buffer) => decoder.push(chunk));
  }

  /** A greeted connection with nothing to do: to a waiting session, else among the idle ones (a few at most). */
  private keepIdle(s: Socket): void {
    // Kept reading, so a closed connection is noticed; the agent sends nothing more before a request.
    s.on('data', () => s.destroy());
    s.resume();
    const waiter = this.waiters.shift();
    if (waiter) waiter(s);
    else if (this.idle.length < IDLE_MAX) this.idle.push(s);
    else s.end(); // the agent's spare sees the end and exits
  }

  /** A connection leaves the pool paused (its session resumes it once it listens), with the way back. */
  private lend(s: Socket): AgentConnection {
    s.removeAllListeners('data');
    s.pause();
    return {
      socket: s,
      giveBack: () => {
        if (!this.server || s.destroyed || !s.writable) {
          s.destroy();
          return;
        }
        this.keepIdle(s);
      },
    };
  }

  /**
   * An idle connection to the agent, waiting up to `timeoutMs` for one; null when none
   * came. The one given back last goes first: its process has served a command just now,
   * and the agent's fresh spare stays for when several sessions run at once.
   */
  take(timeoutMs: number): Promise<AgentConnection | null> {
    const s = this.idle.pop();
    if (s) return Promise.resolve(this.lend(s));
    if (!this.server || timeoutMs <= 0) return Promise.resolve(null);
    return new Promise((resolve) => {
      const waiter = (got: Socket | null): void => {
        clearTimeout(timer);
        resolve(got ? this.lend(got) : null);
      };
      const timer = setTimeout(() => {
        const at = this.waiters.indexOf(waiter);
        if (at >= 0) this.waiters.splice(at, 1);
        resolve(null);
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  /** Stop listening and end every connection, waiting (bounded) until the agent closed its side too. */
  async quiesce(): Promise<void> {
    const server = this.server;
    this.server = null;
    for (const w of this.waiters.splice(0)) w(null);
    // close() answers only once every connection has ended: it is awaited after they were ended below.
    const closed = server ? new Promise<void>((resolve) => server.close(() => resolve())) : Promise.resolve();
    await rm(this.socketPath, { force: true });
    const open = [...this.sockets];
    await Promise.all(
      open.map(
        (s) =>
          new Promise<void>((resolve) => {
            if (s.destroyed) return resolve();
            const timer = setTimeout(() => s.destroy(), QUIESCE_TIMEOUT_MS);
            s.once('close', () => {
              clearTimeout(timer);
              resolve();
            });
            // Half-close: the agent sees end-of-file, ends its command (a session) or its idle wait, and closes.
            s.resume();
            s.end();
          }),
      ),
    );
    await closed;
  }
}

/** The agent sockets of every machine of this server. */
export class AgentHost {
  private readonly endpoints = new Map<string, AgentEndpoint>();
  /**
   * Machines closed by `close` (stopped or destroyed) and not opened since: a request racing
   * the destroy must not listen on the socket of a machine that is going away.
   */
  private readonly closed = new Set<string>();

  constructor(
    private readonly machinesDir: string,
    private readonly log: AgentHostLogger,
    /** Host pids of a machine's processes, among which its agents are found (to nudge them). */
    private readonly machinePids: (id: string) => Promise<number[]>,
    /** Told when a machine's agent died; the runtime starts a new one. */
    private readonly onLost: (id: string) => void,
  ) {}

  /** The host directory mounted read-only at /.hangar/run in the machine. */
  runDir(id: string): string {
    return join(this.machinesDir, id, 'agent');
  }

  /** Make the machine's run directory and listen on its socket (before its container starts or restores). */
  async open(id: string): Promise<void> {
    this.closed.delete(id);
    let ep = this.endpoints.get(id);
    if (!ep) {
      // Registered before the first await: concurrent opens share one endpoint.
      ep = new AgentEndpoint(id, join(this.runDir(id), AGENT_SOCKET_NAME), this.log, () => this.onLost(id));
      this.endpoints.set(id, ep);
    }
    await mkdir(this.runDir(id), { recursive: true, mode: 0o755 });
    await ep.listen();
  }

  /** True when the machine was started with an agent (its run directory exists). */
  async has(id: string): Promise<boolean> {
    if (this.endpoints.has(id)) return true;
    return (await readdir(this.runDir(id)).then(() => true, () => false));
  }

  /**
   * An idle connection to the machine's agent, or null when there is none to be had in
   * `timeoutMs` (no agent in this machine, or it is not answering). After a server
   * restart the socket is opened here, at first use, and the agent nudged to connect now.
   */
  async connect(id: string, timeoutMs: number): Promise<AgentConnection | null> {
    let ep = this.endpoints.get(id);
    if (!ep) {
      if (this.closed.has(id) || !(await this.has(id))) return null;
      await this.open(id);
      ep = this.endpoints.get(id)!;
      await this.signal(id);
    }
    // An agent that never said hello (dead, or a template that cannot run it) is not waited for long.
    return ep.take(ep.helloAt === null ? Math.min(timeoutMs, 250) : timeoutMs);
  }

  /** Close the machine's socket and connections (before a checkpoint); `reopen` after. */
  async quiesce(id: string): Promise<void> {
    await this.endpoints.get(id)?.quiesce();
  }

  /** Listen again after a checkpoint that left the machine running (the agent reconnects within its short backoff). */
  async reopen(id: string): Promise<void> {
    if (this.endpoints.has(id)) await this.open(id);
  }

  /** After a restore (resume, fork, disk grow): listen, and tell the restored agent to connect at once. */
  async nudge(id: string): Promise<void> {
    if (!this.endpoints.has(id)) return;
    await this.open(id);
    await this.signal(id);
  }

  /** Forget the machine (it was destroyed or stopped): close everything of it. */
  async close(id: string): Promise<void> {
    const ep = this.endpoints.get(id);
    this.endpoints.delete(id);
    this.closed.add(id);
    await ep?.quiesce();
  }

  /** The machine's files are gone (destroyed): nothing of it is left to reopen, so stop remembering it. */
  forget(id: string): void {
    this.closed.delete(id);
  }

  /** Close every machine's socket (server shutdown); the agents wait for the next server. */
  async closeAll(): Promise<void> {
    await Promise.all([...this.endpoints.keys()].map((id) => this.close(id)));
  }

  /** Tell the machine's agents to connect now; how many there are (0: none runs, start one). */
  wake(id: string): Promise<number> {
    return this.signal(id);
  }

  /** SIGUSR1 to the machine's agents: they stop waiting between connection attempts. Returns how many were signalled. */
  private async signal(id: string): Promise<number> {
    let signalled = 0;
    for (const pid of await this.machinePids(id)) {
      const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
      // Only the agent's server: the signal would end any other process (a session, a command).
      if (!cmdline.startsWith(`${AGENT_BINARY_IN_MACHINE}\0serve`)) continue;
      try {
        process.kill(pid, 'SIGUSR1');
        signalled++;
      } catch {
        // Gone meanwhile: it reconnects on its own if it comes back.
      }
    }
    return signalled;
  }
}
