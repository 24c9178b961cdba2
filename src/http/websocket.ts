import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';

export type { WebSocket };

/** Largest message accepted from a client (a paste into a terminal fits many times over). */
const MAX_MESSAGE_BYTES = 1024 * 1024;
/** A client that answers no ping for this long is gone (a vanished laptop never sends a FIN). */
const PING_EVERY_MS = 30_000;

/**
 * WebSocket upgrades on the HTTP server, behind a narrow interface so the rest of the
 * HTTP edge never sees the `ws` package: accept an upgrade, refuse one with an HTTP error,
 * and close every socket at shutdown.
 */
export class WebSocketUpgrades {
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: MAX_MESSAGE_BYTES, perMessageDeflate: false });
  private readonly alive = new WeakMap<WebSocket, boolean>();
  private readonly pinger: NodeJS.Timeout;

  constructor() {
    this.pinger = setInterval(() => {
      for (const ws of this.wss.clients) {
        if (this.alive.get(ws) === false) {
          ws.terminate();
          continue;
        }
        this.alive.set(ws, false);
        ws.ping();
      }
    }, PING_EVERY_MS);
    this.pinger.unref();
  }

  /** Complete the upgrade handshake. */
  accept(request: IncomingMessage, socket: Duplex, head: Buffer): Promise<WebSocket> {
    return new Promise((resolve) => {
      this.wss.handleUpgrade(request, socket, head, (ws) => {
        this.alive.set(ws, true);
        ws.on('pong', () => this.alive.set(ws, true));
        resolve(ws);
      });
    });
  }

  /** Refuse an upgrade with an ordinary HTTP answer carrying a JSON body. */
  reject(socket: Duplex, status: number, body: unknown): void {
    refuseUpgrade(socket, status, body);
  }

  /** Close every open socket (server shutdown) and stop pinging. */
  close(): void {
    clearInterval(this.pinger);
    for (const ws of this.wss.clients) ws.close(1001, 'server shutting down');
    this.wss.close();
  }
}

/** Refuse an upgrade request with an ordinary HTTP answer carrying a JSON body, and close the connection. */
export function refuseUpgrade(socket: Duplex, status: number, body: unknown): void {
  if (socket.destroyed) return;
  const text = JSON.stringify(body);
  socket.end(
    `HTTP/1.1 ${status} ${httpReason(status)}\r\ncontent-type: application/json; charset=utf-8\r\n` +
      `content-length: ${Buffer.byteLength(text)}\r\nconnection: close\r\n\r\n${text}`,
  );
}

function httpReason(status: number): string {
  const reasons: Record<number, string> = {
    400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 409: 'Conflict', 422: 'Unprocessable Entity',
    426: 'Upgrade Required', 429: 'Too Many Requests', 500: 'Internal Server Error', 502: 'Bad Gateway', 503: 'Service Unavailable',
  };
  return reasons[status] ?? 'Error';
}
