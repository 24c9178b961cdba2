/**
 * The wire protocol of hangar-agent, the program inside every machine (agent/src/protocol.h
 * is the C side; keep the two in step). A frame is a 4-byte little-endian payload length,
 * a 1-byte type and the payload; strings in payloads are NUL-terminated.
 */

/** Frame types, as the bytes on the wire. */
export const FRAME = {
  hello: 'H',
  started: 'P',
  failed: 'F',
  stdout: 'O',
  stderr: 'E',
  exit: 'Q',
  ack: 'A',
  stdinGone: 'C',
  exec: 'X',
  stdin: 'I',
  signal: 'K',
  resize: 'R',
} as const;

/**
 * The last string of a session's last frame (exit or failed) when the agent then serves
 * the connection's next request (see agent/src/protocol.h).
 */
export const REUSABLE_MARK = 'r';

/** The protocol version this server speaks. */
export const AGENT_VERSION = '1';
/** Where the agent is inside every machine, and the directory the server's socket is in. */
export const AGENT_BINARY_IN_MACHINE = '/.hangar/bin/hangar-agent';
export const AGENT_BIN_DIR_IN_MACHINE = '/.hangar/bin';
export const AGENT_RUN_DIR_IN_MACHINE = '/.hangar/run';
/** The socket's name in that directory. */
export const AGENT_SOCKET_NAME = 'agent.sock';
/** Frames larger than this are a protocol violation (the agent's FRAME_MAX). */
export const FRAME_MAX = 8 * 1024 * 1024;
/** Stdin is sent in pieces of at most this size. */
export const STDIN_CHUNK = 256 * 1024;

/** One decoded frame. */
export interface Frame {
  type: string;
  payload: Buffer;
}

/** A whole frame as bytes. */
export function encodeFrame(type: string, payload: Buffer | string = Buffer.alloc(0)): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const head = Buffer.alloc(5);
  head.writeUInt32LE(body.length, 0);
  head.write(type, 4, 'latin1');
  return Buffer.concat([head, body]);
}

/** A frame's 5-byte header alone, for writing a large payload after it without copying it. */
export function frameHeader(type: string, length: number): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32LE(length, 0);
  head.write(type, 4, 'latin1');
  return head;
}

/** NUL-terminated strings, one after the other. */
export function strings(...values: (string | number)[]): Buffer {
  return Buffer.from(values.map((v) => `${v}\0`).join(''));
}

/** The NUL-terminated strings of a payload. */
export function parseStrings(payload: Buffer): string[] {
  const text = payload.toString('utf8');
  const parts = text.split('\0');
  if (parts.at(-1) === '') parts.pop();
  return parts;
}

/** What a session asks the agent to run. */
export interface AgentCommand {
  /** Pipes for stdin, stdout and stderr, or one terminal. */
  mode: 'pipes' | 'terminal';
  argv: string[];
  cwd: string;
  /** Set over the machine's init environment. */
  env: Record<string, string>;
  rows?: number;
  cols?: number;
}

/** The request frame of a session. Refuses what the agent could not parse (a NUL in a string). */
export function encodeExec(c: AgentCommand): Buffer {
  const env = Object.entries(c.env).map(([k, v]) => `${k}=${v}`);
  for (const s of [c.cwd, ...c.argv, ...env]) {
    if (s.includes('\0')) throw new TypeError('a NUL byte cannot be passed to a command');
  }
  return encodeFrame(
    FRAME.exec,
    strings(c.mode === 'terminal' ? 't' : 'p', c.cwd, c.rows ?? 24, c.cols ?? 80, c.argv.length, ...c.argv, env.length, ...env),
  );
}

/** Splits a byte stream into frames; a bad frame (too large) is reported once, and nothing after it. */
export class FrameDecoder {
  private buffered: Buffer[] = [];
  private size = 0;
  private broken = false;

  constructor(
    private readonly onFrame: (f: Frame) => void,
    private readonly onBad: (reason: string) => void,
  ) {}

  /** Feed bytes as they arrive. */
  push(chunk: Buffer): void {
    if (this.broken) return;
    this.buffered.push(chunk);
    this.size += chunk.length;
    while (this.size >= 5) {
      let head = this.buffered[0]!;
      if (head.length < 5) {
        head = Buffer.concat(this.buffered, this.size);
        this.buffered = [head];
      }
      const len = head.readUInt32LE(0);
      if (len > FRAME_MAX) {
        this.broken = true;
        this.onBad(`a frame of ${len} bytes is larger than ${FRAME_MAX}`);
        return;
      }
      // A large frame comes in many chunks: they are joined once it is whole, not at each one.
      if (this.size < 5 + len) return;
      const data = this.buffered.length === 1 ? head : Buffer.concat(this.buffered, this.size);
      const frame = { type: String.fromCharCode(data[4]!), payload: data.subarray(5, 5 + len) };
      const rest = data.subarray(5 + len);
      this.buffered = rest.length ? [rest] : [];
      this.size = rest.length;
      this.onFrame(frame);
    }
  }
}
