import { request as httpRequest, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import { connect, type Socket } from 'node:net';
import type { Duplex, Readable } from 'node:stream';
import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { HangarError } from '../../domain/errors.js';
import type { MachineService } from '../../service/machine-service.js';
import { safeEqual } from '../../service/secrets.js';
import { errorBody } from '../error-mapping.js';
import { refuseUpgrade } from '../websocket.js';
import { allows, isLive } from '../../domain/transitions.js';

/** Headers that describe one hop, not the message: never forwarded (RFC 9110 7.6.1). */
const HOP_BY_HOP = new Set([
  'connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade',
  'host',
]);
/** Headers of an upgrade request that are not passed on (Connection and Upgrade are: the machine must see them). */
const NOT_FORWARDED_ON_UPGRADE = new Set(['host', 'proxy-authorization', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host']);
const TOKEN_HEADER = 'x-traffic-access-token';
const TOKEN_QUERY = 'traffic_access_token';
/** An upstream that accepts the connection but never answers (or never accepts it) is given up after this long. */
const UPSTREAM_TIMEOUT_MS = 60_000;
/** `/v1/machines/{id}/ports/{port}{rest}?{query}` */
const PATH_FORM = /^\/v1\/machines\/([^/?#]+)\/ports\/([^/?#]*)([^?#]*)(?:\?([^#]*))?/;
/** The first label of an ingress host: `{port}-{machine id}`. */
const HOST_LABEL = /^(\d+)-([a-z0-9_]+)$/;

/** Options of ingress. */
export interface IngressOptions {
  machines: MachineService;
  /** Host-based ingress (`{port}-{id}.{domain}`), lower case; null or absent: off. */
  domain?: string | null;
  log: FastifyBaseLogger;
}

/** Where one ingress request goes. */
export interface IngressTarget {
  id: string;
  /** As written in the request; validated by `reach`. */
  port: string;
  /** The path and query to send to the machine, without the traffic token parameter. */
  path: string;
  /** The traffic token given in the query, if any. */
  queryToken: string | undefined;
}

const decode = (s: string): string => {
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    return s;
  }
};

/** Split the traffic token parameter off a query string (without its `?`). */
function withoutToken(query: string | undefined): { query: string; token: string | undefined } {
  if (query === undefined) return { query: '', token: undefined };
  let token: string | undefined;
  const kept = query.split('&').filter((p) => {
    if (p === '') return false;
    const eq = p.indexOf('=');
    if ((eq < 0 ? p : p.slice(0, eq)) !== TOKEN_QUERY) return true;
    token ??= decode(eq < 0 ? '' : p.slice(eq + 1));
    return false;
  });
  return { query: kept.length ? `?${kept.join('&')}` : '', token };
}

/** The target of a path-form request (`/v1/machines/{id}/ports/{port}/…`), or null. */
export function pathTarget(rawUrl: string): IngressTarget | null {
  const m = PATH_FORM.exec(rawUrl);
  if (!m) return null;
  const q = withoutToken(m[4]);
  return { id: decode(m[1]!), port: m[2]!, path: (m[3] || '/') + q.query, queryToken: q.token };
}

/** The target of a host-form request (Host `{port}-{id}.{domain}`, any port after a colon), or null. */
export function hostTarget(host: string | undefined, rawUrl: string, domain: string | null | undefined): IngressTarget | null {
  if (!domain || !host) return null;
  const name = host.toLowerCase().replace(/:\d*$/, '');
  const suffix = `.${domain}`;
  if (!name.endsWith(suffix)) return null;
  const label = HOST_LABEL.exec(name.slice(0, -suffix.length));
  // envd's port (49983) is served by the E2B surface itself, never proxied into the machine.
  if (!label || label[1] === '49983') return null;
  const q = rawUrl.indexOf('?');
  const { query, token } = withoutToken(q < 0 ? undefined : rawUrl.slice(q + 1));
  const path = q < 0 ? rawUrl : rawUrl.slice(0, q);
  return { id: label[2]!, port: label[1]!, path: (path.startsWith('/') ? path : `/${path}`) + query, queryToken: token };
}

/**
 * Check one ingress request and find where it goes: a valid port, the machine's traffic
 * token (unless it is public), and a running machine, resumed first when it is paused and
 * was created with auto_resume. Counts as activity.
 */
async function reach(o: IngressOptions, t: IngressTarget, headerToken: string | string[] | undefined): Promise<{ ip: string; port: number }> {
  if (!/^\d{1,5}$/.test(t.port) || Number(t.port) < 1 || Number(t.port) > 65_535) {
    throw new HangarError('VALIDATION_FAILED', 'Invalid request. port: must be 1 to 65535', { fields: [{ field: 'path.port', message: 'must be 1 to 65535' }] });
  }
  let m = await o.machines.findForTraffic(t.id);
  if (!m?.public) {
    const given = typeof headerToken === 'string' ? headerToken : (t.queryToken ?? '');
    // The token is derived from the id alone: checked before the machine's existence is revealed.
    if (!safeEqual(given, o.machines.trafficToken(t.id))) {
      throw new HangarError('UNAUTHORIZED', `Traffic to machine ${t.id} needs its traffic access token in the X-Traffic-Access-Token header or the traffic_access_token query parameter.`);
    }
  }
  if (!m || !isLive(m.status)) throw new HangarError('NOT_FOUND', `Machine ${t.id} does not exist.`);
  await o.machines.assertHere(m);
  if (allows(m.status, 'resume') && m.autoResume) m = await o.machines.resumeForTraffic(t.id);
  if (!allows(m.status, 'traffic') || m.privateIp === null) {
    const hint = allows(m.status, 'resume') ? ' Resume it, or create machines with "auto_resume": true to have traffic resume them.' : '';
    throw new HangarError('STATE_CONFLICT', `Machine ${t.id} is ${m.status}; traffic reaches only a running machine.${hint}`, { status: m.status });
  }
  o.machines.touch(t.id);
  return { ip: m.privateIp, port: Number(t.port) };
}

/** Copy headers, dropping hop-by-hop ones, those `Connection` names, and the traffic token. */
function forwardable(headers: IncomingHttpHeaders): Record<string, string | string[]> {
  const named = new Set(String(headers.connection ?? '').toLowerCase().split(',').map((s) => s.trim()).filter(Boolean));
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(headers)) {
    if (v === undefined || HOP_BY_HOP.has(k) || named.has(k) || k === TOKEN_HEADER) continue;
    out[k] = v;
  }
  return out;
}

/** Proxy one HTTP request to its target; `body` is what to stream upstream. */
async function proxyHttp(request: FastifyRequest, reply: FastifyReply, o: IngressOptions, t: IngressTarget, body: Readable | undefined): Promise<FastifyReply> {
  const at = await reach(o, t, request.headers[TOKEN_HEADER]);
  const upstream = await new Promise<IncomingMessage>((resolve, reject) => {
    const req = httpRequest({
      host: at.ip,
      port: at.port,
      method: request.method,
      path: t.path,
      headers: {
        ...forwardable(request.headers),
        'x-forwarded-for': request.ip,
        'x-forwarded-proto': request.protocol,
        ...(request.headers.host === undefined ? {} : { 'x-forwarded-host': request.headers.host }),
      },
      timeout: UPSTREAM_TIMEOUT_MS,
    });
    req.on('response', resolve);
    req.on('timeout', () => req.destroy(new Error('the machine did not answer in time')));
    req.on('error', (err) => reject(unreachable(t, err)));
    if (body && typeof body.pipe === 'function') body.pipe(req);
    else req.end();
  });
  upstream.on('end', () => o.machines.touch(t.id));
  reply.code(upstream.statusCode ?? 502);
  for (const [k, v] of Object.entries(forwardable(upstream.headers))) reply.header(k, v);
  return reply.send(upstream);
}

function unreachable(t: IngressTarget, err: Error): HangarError {
  return new HangarError('UPSTREAM_UNREACHABLE', `Nothing answered on port ${t.port} of machine ${t.id} (${err.message}).`, { machine_id: t.id, port: Number(t.port) });
}

/**
 * Ingress over HTTP, in two forms:
 * - `ANY /v1/machines/{id}/ports/{port}/…`: routes of their own scope;
 * - any request whose Host is `{port}-{id}.{domain}` (when a domain is configured): an
 *   onRequest hook that answers before any API routing, with the whole path.
 * Call before any other route is registered, so the hook sees every request.
 * Returns the WebSocket side, for the server's upgrade listener.
 */
export function registerIngress(app: FastifyInstance, o: IngressOptions): IngressUpgrades {
  if (o.domain) {
    app.addHook('onRequest', async (request, reply) => {
      const t = hostTarget(request.headers.host, request.raw.url ?? '/', o.domain);
      if (!t) return;
      // No body parser has run: the raw request streams to the machine.
      await proxyHttp(request, reply, o, t, request.raw);
      return reply;
    });
  }
  void app.register(async (scope) => {
    // Bodies are streamed to the machine as they come, whatever their type.
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', (_request, payload, done) => done(null, payload));
    const handler = async (request: FastifyRequest, reply: FastifyReply) => {
      const t = pathTarget(request.raw.url ?? '/');
      if (!t) throw new HangarError('ROUTE_NOT_FOUND', `No endpoint ${request.method} ${(request.raw.url ?? '/').split('?')[0]}; see GET /openapi.json.`);
      return proxyHttp(request, reply, o, t, request.body as Readable | undefined);
    };
    // HEAD comes with GET (Fastify answers it from the GET handler without the body).
    const methods = ['DELETE', 'GET', 'PATCH', 'POST', 'PUT', 'OPTIONS'] as const;
    scope.route({ method: [...methods], url: '/v1/machines/:id/ports/:port', handler });
    scope.route({ method: [...methods], url: '/v1/machines/:id/ports/:port/*', handler });
  });
  return new IngressUpgrades(o);
}

/**
 * Ingress over WebSocket (any upgrade, in fact): the upgrade request is checked like an
 * HTTP one, forwarded to the machine's port as it came (less the token), and then the
 * two connections are piped into each other, byte for byte, until either closes.
 */
export class IngressUpgrades {
  private readonly sockets = new Set<Duplex>();

  constructor(private readonly o: IngressOptions) {}

  /** Where an upgrade request goes when it is ingress (by host, else by path); null when it is not. */
  target(request: IncomingMessage): IngressTarget | null {
    const url = request.url ?? '/';
    return hostTarget(request.headers.host, url, this.o.domain) ?? pathTarget(url);
  }

  /** Take over an upgrade request whose target `target` found. */
  handle(request: IncomingMessage, socket: Duplex, head: Buffer, t: IngressTarget): void {
    this.track(socket);
    void this.open(request, socket, head, t).catch((err: unknown) => {
      const known = err instanceof HangarError ? err : null;
      if (!known) this.o.log.error({ err }, 'ingress upgrade failed');
      else if (known.status >= 500) this.o.log.error({ err }, known.message);
      const e = known ?? new HangarError('INTERNAL', 'An unexpected error occurred; it has been logged.');
      refuseUpgrade(socket, e.status, errorBody(e));
    });
  }

  /** Close every proxied connection (server shutdown). */
  close(): void {
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }

  private track(s: Duplex): void {
    this.sockets.add(s);
    s.once('close', () => this.sockets.delete(s));
  }

  private async open(request: IncomingMessage, socket: Duplex, head: Buffer, t: IngressTarget): Promise<void> {
    const at = await reach(this.o, t, request.headers[TOKEN_HEADER]);
    if (socket.destroyed) return;
    const upstream = await dial(at.ip, at.port, t);
    if (socket.destroyed) {
      upstream.destroy();
      return;
    }
    this.track(upstream);
    upstream.setNoDelay(true);
    (socket as Partial<Socket>).setNoDelay?.(true);
    upstream.write(upgradeHead(request, t, at));
    if (head.length > 0) upstream.write(head);
    // Bytes either way are activity (touch is cheap: one map write, stored once a second).
    const touch = () => this.o.machines.touch(t.id);
    socket.on('data', touch);
    upstream.on('data', touch);
    socket.pipe(upstream);
    upstream.pipe(socket);
    socket.once('close', () => upstream.destroy());
    upstream.once('close', () => socket.destroy());
  }
}

/** Connect to the machine's port, or UPSTREAM_UNREACHABLE. */
function dial(ip: string, port: number, t: IngressTarget): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: ip, port });
    s.setTimeout(UPSTREAM_TIMEOUT_MS, () => s.destroy(new Error('the machine did not accept the connection in time')));
    // Stays attached: later errors just close the pipe.
    s.on('error', (err) => reject(unreachable(t, err)));
    s.once('connect', () => {
      s.setTimeout(0);
      resolve(s);
    });
  });
}

/** The upgrade request as the machine gets it: its path, its headers less the token, the Host of the machine. */
function upgradeHead(request: IncomingMessage, t: IngressTarget, at: { ip: string; port: number }): string {
  const lines = [`${request.method ?? 'GET'} ${t.path} HTTP/1.1`, `Host: ${at.ip}:${at.port}`];
  const raw = request.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    if (name === TOKEN_HEADER || NOT_FORWARDED_ON_UPGRADE.has(name)) continue;
    lines.push(`${raw[i]}: ${raw[i + 1]}`);
  }
  lines.push(`X-Forwarded-For: ${request.socket.remoteAddress ?? ''}`, 'X-Forwarded-Proto: http');
  if (request.headers.host !== undefined) lines.push(`X-Forwarded-Host: ${request.headers.host}`);
  return `${lines.join('\r\n')}\r\n\r\n`;
}
