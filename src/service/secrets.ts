import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Store } from '../store/store.js';

/** Hex SHA-256 of an API key: the only form in which keys are stored. */
export function hashApiKey(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** A new random API key (`hgr_` + 43 base64url characters, 256 bits). */
export function newApiKeySecret(): string {
  return `hgr_${randomBytes(32).toString('base64url')}`;
}

/** Constant-time equality of two strings (false when lengths differ). */
export function safeEqual(a: string, b: string): boolean {
  const ab = Buffer.from(a, 'utf8');
  const bb = Buffer.from(b, 'utf8');
  return ab.length === bb.length && timingSafeEqual(ab, bb);
}

/**
 * The server's signing secret, kept in the store so every host sharing one database
 * agrees. It signs list cursors and derives each machine's traffic access token, so
 * no token is stored anywhere.
 */
export class ServerSecret {
  private constructor(private readonly key: Buffer) {}

  /** Load the secret from the store, creating it on first start. */
  static async load(store: Store): Promise<ServerSecret> {
    const value = await store.putMetaIfAbsent('server_secret', randomBytes(32).toString('hex'));
    return new ServerSecret(Buffer.from(value, 'hex'));
  }

  /** HMAC-SHA256 of `purpose` and `data`, base64url. */
  sign(purpose: string, data: string): string {
    return createHmac('sha256', this.key).update(`${purpose}\0${data}`).digest('base64url');
  }

  /** The traffic access token of a machine (stable for its life, unguessable without the secret). */
  trafficToken(machineId: string): string {
    return `tat_${this.sign('traffic', machineId)}`;
  }

  /**
   * A machine's envd access token (the E2B surface): grants commands and files inside the
   * machine, so it is a different token from the traffic token, which grants only its ports.
   */
  envdToken(machineId: string): string {
    return `eat_${this.sign('envd', machineId)}`;
  }

  /**
   * The VNC password of a desktop machine: derived, never stored. VNC Authentication
   * keys DES with at most 8 characters, so it is the first 8 of the HMAC (48 bits).
   */
  vncPassword(machineId: string): string {
    return this.sign('vnc', machineId).slice(0, 8);
  }
}
