import { createCipheriv } from 'node:crypto';
import { connect } from 'node:net';
import type { Duplex } from 'node:stream';

/** What a VNC server said during the handshake, up to its ServerInit. */
export interface RfbHandshakeResult {
  /** The server's ProtocolVersion line without the newline, e.g. `RFB 003.008`. */
  serverVersion: string;
  /** The version this client answered. */
  clientVersion: string;
  /** Security types the server offered (for 3.3, the one it chose). */
  securityTypes: number[];
  /** 0 is OK; anything else failed (then `failureReason` and no ServerInit). */
  securityResult: number;
  failureReason: string | null;
  /** From ServerInit, when authentication succeeded. */
  serverInit: { width: number; height: number; bitsPerPixel: number; depth: number; name: string } | null;
}

/** Options of one handshake. */
export interface RfbHandshakeOptions {
  host: string;
  port: number;
  password: string;
  /** Speak over this already open stream (e.g. a WebSocket proxy's) instead of connecting to host:port. */
  stream?: Duplex;
  /** Give up (and fail) after this long. @default 10000 */
  timeoutMs?: number;
}

const SECURITY_NONE = 1;
const SECURITY_VNC_AUTH = 2;

/** Reads exact byte counts from a socket, failing on close or timeout. */
class ByteReader {
  private buf = Buffer.alloc(0);
  private waiter: (() => void) | null = null;
  private ended: Error | null = null;

  constructor(socket: Duplex) {
    socket.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.waiter?.();
    });
    const end = (err?: Error): void => {
      this.ended ??= err ?? new Error('the VNC server closed the connection');
      this.waiter?.();
    };
    socket.on('end', () => end());
    socket.on('close', () => end());
    socket.on('error', (err) => end(err));
  }

  async read(n: number): Promise<Buffer> {
    while (this.buf.length < n) {
      if (this.ended) throw new Error(`wanted ${n} bytes, had ${this.buf.length}: ${this.ended.message}`);
      await new Promise<void>((resolve) => (this.waiter = resolve));
      this.waiter = null;
    }
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }

  async u8(): Promise<number> {
    return (await this.read(1)).readUInt8(0);
  }

  async u32(): Promise<number> {
    return (await this.read(4)).readUInt32BE(0);
  }

  async string(): Promise<string> {
    return (await this.read(await this.u32())).toString('latin1');
  }
}

/** Reverse the bit order of one byte: VNC Authentication's DES key quirk. */
function reverseBits(b: number): number {
  let r = 0;
  for (let i = 0; i < 8; i++) r = (r << 1) | ((b >> i) & 1);
  return r;
}

/**
 * The answer to a VNC Authentication challenge: each 8-byte block encrypted with DES,
 * keyed by the password (at most 8 bytes, zero-padded) with each byte's bits reversed.
 * OpenSSL 3 keeps single DES in its legacy provider; two-key triple DES with both keys
 * equal is single DES, and is in the default provider.
 */
export function vncAuthResponse(password: string, challenge: Buffer): Buffer {
  const key = Buffer.alloc(8);
  Buffer.from(password, 'latin1').copy(key, 0, 0, 8);
  for (let i = 0; i < 8; i++) key[i] = reverseBits(key[i]!);
  const cipher = createCipheriv('des-ede-ecb', Buffer.concat([key, key]), null);
  cipher.setAutoPadding(false);
  return Buffer.concat([cipher.update(challenge), cipher.final()]);
}

/**
 * A real RFB (VNC) client handshake over TCP (RFC 6143): ProtocolVersion, security
 * (VNC Authentication), SecurityResult, ClientInit (shared) and ServerInit. Closes the
 * connection after ServerInit or a failed SecurityResult.
 */
export async function rfbHandshake(opts: RfbHandshakeOptions): Promise<RfbHandshakeResult> {
  const socket = opts.stream ?? connect({ host: opts.host, port: opts.port });
  const reader = new ByteReader(socket);
  const timeoutMs = opts.timeoutMs ?? 10_000;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`RFB handshake with ${opts.host}:${opts.port} took over ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    return await Promise.race([handshake(socket, reader, opts.password), timeout]);
  } finally {
    clearTimeout(timer);
    socket.destroy();
  }
}

async function handshake(socket: Duplex, reader: ByteReader, password: string): Promise<RfbHandshakeResult> {
  const serverVersion = (await reader.read(12)).toString('latin1');
  const m = /^RFB (\d{3})\.(\d{3})\n$/.exec(serverVersion);
  if (!m) throw new Error(`not an RFB ProtocolVersion: ${JSON.stringify(serverVersion)}`);
  const minor = Number(m[1]) > 3 ? 8 : Math.min(Number(m[2]), 8);
  const useMinor = minor >= 8 ? 8 : minor >= 7 ? 7 : 3;
  const clientVersion = `RFB 003.00${useMinor}`;
  socket.write(`${clientVersion}\n`);

  let securityTypes: number[];
  let chosen: number;
  if (useMinor === 3) {
    chosen = await reader.u32();
    securityTypes = [chosen];
    if (chosen === 0) throw new Error(`the server refused the connection: ${await reader.string()}`);
  } else {
    const count = await reader.u8();
    if (count === 0) throw new Error(`the server refused the connection: ${await reader.string()}`);
    securityTypes = [...(await reader.read(count))];
    chosen = securityTypes.includes(SECURITY_VNC_AUTH) ? SECURITY_VNC_AUTH : SECURITY_NONE;
    if (!securityTypes.includes(chosen)) throw new Error(`no security type this client speaks among ${securityTypes.join(', ')}`);
    socket.write(Buffer.from([chosen]));
  }
  if (chosen === SECURITY_VNC_AUTH) {
    const challenge = await reader.read(16);
    socket.write(vncAuthResponse(password, challenge));
  }
  // 3.3 and 3.7 send no SecurityResult after the None type.
  const securityResult = chosen === SECURITY_NONE && useMinor < 8 ? 0 : await reader.u32();
  if (securityResult !== 0) {
    const failureReason = useMinor >= 8 ? await reader.string().catch(() => null) : null;
    return { serverVersion: serverVersion.trimEnd(), clientVersion, securityTypes, securityResult, failureReason, serverInit: null };
  }
  socket.write(Buffer.from([1])); // ClientInit: shared
  const head = await reader.read(20);
  const name = await reader.string();
  return {
    serverVersion: serverVersion.trimEnd(),
    clientVersion,
    securityTypes,
    securityResult,
    failureReason: null,
    serverInit: { width: head.readUInt16BE(0), height: head.readUInt16BE(2), bitsPerPixel: head.readUInt8(4), depth: head.readUInt8(5), name },
  };
}
