import type { IncomingMessage } from 'node:http';
import { connect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { FastifyBaseLogger } from 'fastify';
import { HangarError } from '../../domain/errors.js';
import type { DesktopService, VncTarget } from '../../service/desktop-service.js';
import { errorBody, internalError } from '../error-mapping.js';
import { defineRoute, type AnyRoute, type Authenticate } from '../route.js';
import { ErrorSchema } from '../shared/schemas.js';
import { parseOrThrow } from '../validation.js';
import { WebSocketUpgrades, type WebSocket } from '../websocket.js';
import { DesktopVncQuery, MachineParams } from './schemas.js';
import { scopeRefusal } from '../../domain/team.js';

/** VNC bytes waiting in the socket's send buffer beyond this stop reading from the VNC server. */
const SEND_BUFFER_HIGH = 4 * 1024 * 1024;
const SEND_BUFFER_LOW = 1024 * 1024;
/** How long the VNC server may take to accept the connection. */
const CONNECT_TIMEOUT_MS = 5_000;
/** An open desktop keeps its machine active: touched this often. */
const ACTIVITY_EVERY_MS = 1_000;

const VNC_PATH = /^\/v1\/machines\/([^/?#]+)\/desktop\/vnc(?:\?|$)/;

/** The documented form of the desktop endpoint; a request that is not a WebSocket upgrade gets 426. */
export function desktopRoutes(): AnyRoute[] {
  return [
    defineRoute({
      method: 'GET',
      url: '/v1/machines/:id/desktop/vnc',
      operationId: 'openDesktopVnc',
      summary: "A desktop machine's VNC server, over a WebSocket",
      description:
        'Upgrade to a WebSocket (`Connection: Upgrade`, `Upgrade: websocket`). Binary frames both ways carry the RFB ' +
        "(VNC) protocol of the machine's VNC server, byte for byte, as noVNC and other WebSocket VNC clients expect; the " +
        'VNC server still asks for its password (the Paperspace-style `GET /paperspace/v1/machines/{id}/desktop` gives it ' +
        'to callers who may reach the machine). Errors found before the upgrade (401, 404, 409 for a machine that is not ' +
        'running, 422 NO_DESKTOP, 502) are ordinary JSON answers. Auth: the Authorization header, or `access_token` in the ' +
        'query. An open desktop counts as activity.',
      tag: 'machines',
      auth: 'public',
      params: MachineParams,
      query: DesktopVncQuery,
      responses: {
        101: { description: 'Switching protocols: the WebSocket is open and joined to the VNC server.' },
        400: { description: 'Invalid path or query.', schema: ErrorSchema },
        401: { description: 'Missing or unknown API key.', schema: ErrorSchema },
        404: { description: 'No such machine for this team.', schema: ErrorSchema },
        409: { description: 'The machine is not running.', schema: ErrorSchema },
        422: { description: "NO_DESKTOP: the machine's template runs no desktop.", schema: ErrorSchema },
        426: { description: 'Not a WebSocket upgrade request.', schema: ErrorSchema },
        502: { description: 'UPSTREAM_UNREACHABLE: the VNC server did not accept the connection.', schema: ErrorSchema },
      },
      handler: async () => {
        throw new HangarError('UPGRADE_REQUIRED', 'This endpoint is a WebSocket: send an upgrade request (Connection: Upgrade, Upgrade: websocket).');
      },
    }),
  ];
}

/** Desktop WebSockets: the app's upgrade listener hands them the upgrades whose path `matches`. */
export interface DesktopUpgrades {
  /** True for a desktop VNC path. */
  matches(url: string): boolean;
  /** Serve one upgrade request. */
  handle(request: IncomingMessage, socket: Duplex, head: Buffer): void;
  /** Close every desktop socket (server shutdown). */
  close(): void;
}

/** Serve desktop WebSockets: each is joined to its machine's VNC port. */
export function desktopUpgrades(desktop: DesktopService, authenticate: Authenticate, log: FastifyBaseLogger): DesktopUpgrades {
  const upgrades = new WebSocketUpgrades();
  const open = new Set<Socket>();
  return {
    matches: (url) => VNC_PATH.test(url),
    handle: (request, socket, head) => {
      void handleUpgrade(upgrades, open, desktop, authenticate, request, socket, head).catch((err: unknown) => {
        const known = err instanceof HangarError ? err : null;
        if (!known) log.error({ err }, 'desktop upgrade failed');
        const e = known ?? internalError();
        upgrades.reject(socket, e.status, errorBody(e));
      });
    },
    close: () => {
      for (const s of open) s.destroy();
      upgrades.close();
    },
  };
}

async function handleUpgrade(
  upgrades: WebSocketUpgrades,
  open: Set<Socket>,
  desktop: DesktopService,
  authenticate: Authenticate,
  request: IncomingMessage,
  socket: Duplex,
  head: Buffer,
): Promise<void> {
  const url = request.url ?? '/';
  const match = VNC_PATH.exec(url);
  if (!match) throw new HangarError('ROUTE_NOT_FOUND', `No WebSocket endpoint at ${url.split('?')[0]}; see GET /openapi.json.`);
  const query = parseOrThrow(DesktopVncQuery, Object.fromEntries(new URL(url, 'http://localhost').searchParams), 'query');
  const header = request.headers.authorization ?? (query.access_token === undefined ? undefined : `Bearer ${query.access_token}`);
  const caller = await authenticate(header);
  const id = parseOrThrow(MachineParams, { id: decodeURIComponent(match[1]!) }, 'path').id;
  const refusal = scopeRefusal(caller.scope, 'WS', id);
  if (refusal !== null) throw new HangarError('FORBIDDEN', refusal);
  const target = await desktop.vncTarget(caller, id);
  // Connect first, so an unreachable VNC server is a plain 502 rather than a socket that closes at once.
  const vnc = await connectVnc(target);
  if (socket.destroyed) {
    vnc.destroy();
    return;
  }
  open.add(vnc);
  vnc.once('close', () => open.delete(vnc));
  const ws = await upgrades.accept(request, socket, head);
  relay(ws, vnc, () => desktop.touch(target.machineId));
}

function connectVnc(target: VncTarget): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: target.host, port: target.port });
    const fail = (why: string): void => {
      s.destroy();
      reject(new HangarError('UPSTREAM_UNREACHABLE', `The VNC server of machine ${target.machineId} (${target.host}:${target.port}) ${why}; wait for the desktop to start and try again.`));
    };
    const timer = setTimeout(() => fail(`did not answer within ${CONNECT_TIMEOUT_MS} ms`), CONNECT_TIMEOUT_MS);
    s.once('connect', () => {
      clearTimeout(timer);
      s.removeAllListeners('error');
      s.on('error', () => undefined);
      s.setNoDelay(true);
      resolve(s);
    });
    s.once('error', (err) => {
      clearTimeout(timer);
      fail(`refused the connection (${err.message})`);
    });
  });
}

/** Copy bytes both ways until either side ends; the machine counts as active meanwhile. */
function relay(ws: WebSocket, vnc: Socket, touch: () => void): void {
  touch();
  const activity = setInterval(touch, ACTIVITY_EVERY_MS);
  activity.unref();
  vnc.on('data', (chunk: Buffer) => {
    if (ws.readyState !== ws.OPEN) return;
    ws.send(chunk, { binary: true }, () => {
      if (vnc.isPaused() && ws.bufferedAmount < SEND_BUFFER_LOW) vnc.resume();
    });
    if (ws.bufferedAmount > SEND_BUFFER_HIGH) vnc.pause();
  });
  ws.on('message', (data: Buffer | ArrayBuffer | Buffer[]) => {
    vnc.write(Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer));
  });
  const end = (): void => {
    clearInterval(activity);
    vnc.destroy();
    if (ws.readyState === ws.OPEN) ws.close(1000, 'the VNC connection ended');
  };
  vnc.once('close', end);
  ws.once('close', end);
}
