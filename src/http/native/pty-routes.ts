import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyBaseLogger } from 'fastify';
import { HangarError } from '../../domain/errors.js';
import { normaliseCwd } from '../../domain/machine.js';
import type { PtyService, PtySession } from '../../service/pty-service.js';
import { errorBody, internalError } from '../error-mapping.js';
import { defineRoute, type AnyRoute, type Authenticate } from '../route.js';
import { ErrorSchema } from '../shared/schemas.js';
import { parseOrThrow } from '../validation.js';
import { WebSocketUpgrades, type WebSocket } from '../websocket.js';
import { MachineParams, PtyQuery, PtyResizeMessage } from './schemas.js';
import { scopeRefusal } from '../../domain/team.js';

/** Output waiting in a socket's send buffer beyond this holds the terminal's output back. */
const SEND_BUFFER_HIGH = 1024 * 1024;
const SEND_BUFFER_LOW = 256 * 1024;

const PTY_PATH = /^\/v1\/machines\/([^/?#]+)\/pty(?:\?|$)/;

/** The documented form of the terminal endpoint; a request that is not a WebSocket upgrade gets 426. */
export function ptyRoutes(): AnyRoute[] {
  return [
    defineRoute({
      method: 'GET',
      url: '/v1/machines/:id/pty',
      operationId: 'openPty',
      summary: 'A terminal in a machine, over a WebSocket',
      description:
        'Upgrade to a WebSocket (`Connection: Upgrade`, `Upgrade: websocket`). Binary frames both ways carry the ' +
        "terminal's bytes; a text frame `{\"type\":\"resize\",\"cols\",\"rows\"}` sets its window size. When the command " +
        'exits the server sends a text frame `{"type":"exit","exit_code"}` (null when unknown) and closes with code 1000. Errors found before the upgrade ' +
        '(401, 404, 409 for a machine that is not running, 422, 503) are ordinary JSON answers. Auth: the Authorization ' +
        'header, or `access_token` in the query. An open terminal counts as activity.',
      tag: 'machines',
      auth: 'public',
      params: MachineParams,
      query: PtyQuery,
      responses: {
        101: { description: 'Switching protocols: the WebSocket is open.' },
        400: { description: 'Invalid query.', schema: ErrorSchema },
        401: { description: 'Missing or unknown API key.', schema: ErrorSchema },
        404: { description: 'No such machine for this team.', schema: ErrorSchema },
        409: { description: 'The machine is not running.', schema: ErrorSchema },
        422: { description: 'COMMAND_NOT_STARTED: the command could not be started.', schema: ErrorSchema },
        426: { description: 'Not a WebSocket upgrade request.', schema: ErrorSchema },
        503: { description: 'This server cannot provide terminals (no C compiler to build the relay).', schema: ErrorSchema },
      },
      handler: async () => {
        throw new HangarError('UPGRADE_REQUIRED', 'This endpoint is a WebSocket: send an upgrade request (Connection: Upgrade, Upgrade: websocket).');
      },
    }),
  ];
}

/** Terminal WebSockets: the server's upgrade listener hands them every upgrade that is not ingress. */
export interface PtyUpgrades {
  /** Serve one upgrade request (one that is not a terminal's gets 404). */
  handle(request: IncomingMessage, socket: Duplex, head: Buffer): void;
  /** Close every terminal socket (server shutdown). */
  close(): void;
}

/** Serve terminal WebSockets. */
export function ptyUpgrades(pty: PtyService, authenticate: Authenticate, log: FastifyBaseLogger): PtyUpgrades {
  const upgrades = new WebSocketUpgrades();
  return {
    handle: (request, socket, head) => {
      void handleUpgrade(upgrades, pty, authenticate, request, socket, head).catch((err: unknown) => {
        const known = err instanceof HangarError ? err : null;
        if (!known) log.error({ err }, 'pty upgrade failed');
        const e = known ?? internalError();
        upgrades.reject(socket, e.status, errorBody(e));
      });
    },
    close: () => upgrades.close(),
  };
}

async function handleUpgrade(
  upgrades: WebSocketUpgrades,
  pty: PtyService,
  authenticate: Authenticate,
  request: IncomingMessage,
  socket: Duplex,
  head: Buffer,
): Promise<void> {
  const url = request.url ?? '/';
  const match = PTY_PATH.exec(url);
  if (!match) throw new HangarError('ROUTE_NOT_FOUND', `No WebSocket endpoint at ${url.split('?')[0]}; see GET /openapi.json.`);
  const query = parseOrThrow(PtyQuery, Object.fromEntries(new URL(url, 'http://localhost').searchParams), 'query');
  const header = request.headers.authorization ?? (query.access_token === undefined ? undefined : `Bearer ${query.access_token}`);
  const caller = await authenticate(header);
  const id = parseOrThrow(MachineParams, { id: decodeURIComponent(match[1]!) }, 'path').id;
  const refusal = scopeRefusal(caller.scope, 'WS', id);
  if (refusal !== null) throw new HangarError('FORBIDDEN', refusal);
  const session = await pty.start(caller, id, {
    cmd: query.cmd,
    cwd: query.cwd === undefined ? undefined : (normaliseCwd(query.cwd) ?? undefined),
    user: query.user,
    cols: query.cols,
    rows: query.rows,
  });
  if (socket.destroyed) {
    session.detach(query.keep);
    return;
  }
  const ws = await upgrades.accept(request, socket, head);
  relay(ws, session, query.keep);
}

/** Copy bytes between the socket and the terminal until either side ends. */
function relay(ws: WebSocket, session: PtySession, keep: boolean): void {
  let paused = false;
  session.attach((chunk) => {
    if (ws.readyState !== ws.OPEN) return;
    ws.send(chunk, { binary: true }, () => {
      if (paused && ws.bufferedAmount < SEND_BUFFER_LOW) {
        paused = false;
        session.resume();
      }
    });
    if (!paused && ws.bufferedAmount > SEND_BUFFER_HIGH) {
      paused = true;
      session.pause();
    }
  });
  ws.on('message', (data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean) => {
    const bytes = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer);
    if (isBinary) {
      session.write(bytes);
      return;
    }
    let message: unknown;
    try {
      message = JSON.parse(bytes.toString('utf8'));
    } catch {
      message = null;
    }
    const resize = PtyResizeMessage.safeParse(message);
    if (resize.success) session.resize(resize.data.cols, resize.data.rows);
    else ws.send(JSON.stringify({ type: 'error', message: 'Text frames must be {"type":"resize","cols":1-1000,"rows":1-1000}; send input as binary frames.' }));
  });
  ws.on('close', () => session.detach(keep));
  void session.exited.then(({ exitCode }) => {
    if (ws.readyState !== ws.OPEN) return;
    ws.send(JSON.stringify({ type: 'exit', exit_code: exitCode }));
    ws.close(1000, 'the command exited');
  });
}
