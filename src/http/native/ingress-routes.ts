import { request as httpRequest, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { HangarError } from '../../domain/errors.js';
import type { MachineService } from '../../service/machine-service.js';
import { safeEqual } from '../../service/secrets.js';

/** Headers that describe one hop, not the message: never forwarded (RFC 9110 7.6.1). */
const HOP_BY_HOP = new Set([
  'connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade',
  'host',
]);
const TOKEN_HEADER = 'x-traffic-access-token';
const TOKEN_QUERY = 'traffic_access_token';
/** An upstream that accepts the connection but never answers is given up after this long. */
const UPSTREAM_TIMEOUT_MS = 60_000;

/** Options of the ingress routes. */
export interface IngressOptions {
  machines: MachineService;
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

/** The path and query to send upstream: after `/ports/{port}`, without the traffic token parameter. */
function upstreamPath(rawUrl: string, id: string, port: string): string {
  const [path = '', query] = rawUrl.split('?', 2);
  const prefix = `/v1/machines/${id}/ports/${port}`;
  const rest = path.slice(prefix.length) || '/';
  if (query === undefined) return rest;
  const kept = query.split('&').filter((p) => p !== '' && p.split('=')[0] !== TOKEN_QUERY);
  return kept.length ? `${rest}?${kept.join('&')}` : rest;
}

/**
 * `ANY /v1/machines/{id}/ports/{port}/…`: proxied to the machine's private address and
 * port. Authenticated by the machine's traffic access token (header or query), not by an
 * API key, unless the machine is public. Each request is activity of the machine.
 */
export function registerIngress(app: FastifyInstance, o: IngressOptions): void {
  void app.register(async (scope) => {
    // Bodies are streamed to the machine as they come, whatever their type.
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', (_request, payload, done) => done(null, payload));
    const handler = (request: FastifyRequest, reply: FastifyReply) => proxy(request, reply, o);
    // HEAD comes with GET (Fastify answers it from the GET handler without the body).
    const methods = ['DELETE', 'GET', 'PATCH', 'POST', 'PUT', 'OPTIONS'] as const;
    scope.route({ method: [...methods], url: '/v1/machines/:id/ports/:port', handler });
    scope.route({ method: [...methods], url: '/v1/machines/:id/ports/:port/*', handler });
  });
}

async function proxy(request: FastifyRequest, reply: FastifyReply, o: IngressOptions): Promise<FastifyReply> {
  const { id, port } = request.params as { id: string; port: string };
  if (!/^\d{1,5}$/.test(port) || Number(port) < 1 || Number(port) > 65_535) {
    throw new HangarError('VALIDATION_FAILED', 'Invalid request. port: must be 1 to 65535', { fields: [{ field: 'path.port', message: 'must be 1 to 65535' }] });
  }
  const m = await o.machines.findForTraffic(id);
  if (!m?.public) {
    const query = request.query as Record<string, unknown>;
    const header = request.headers[TOKEN_HEADER];
    const given = typeof header === 'string' ? header : typeof query[TOKEN_QUERY] === 'string' ? (query[TOKEN_QUERY] as string) : '';
    // The token is derived from the id alone: checked before the machine's existence is revealed.
    if (!safeEqual(given, o.machines.trafficToken(id))) {
      throw new HangarError('UNAUTHORIZED', `Traffic to machine ${id} needs its traffic access token in the X-Traffic-Access-Token header or the traffic_access_token query parameter.`);
    }
  }
  if (!m || m.status === 'destroyed') throw new HangarError('NOT_FOUND', `Machine ${id} does not exist.`);
  if (m.status !== 'running' || m.privateIp === null) {
    throw new HangarError('STATE_CONFLICT', `Machine ${id} is ${m.status}; traffic reaches only a running machine.`, { status: m.status });
  }
  o.machines.touch(id);
  const upstream = await new Promise<IncomingMessage>((resolve, reject) => {
    const req = httpRequest({
      host: m.privateIp!,
      port: Number(port),
      method: request.method,
      path: upstreamPath(request.raw.url ?? '/', id, port),
      headers: { ...forwardable(request.headers), 'x-forwarded-for': request.ip, 'x-forwarded-proto': request.protocol },
      timeout: UPSTREAM_TIMEOUT_MS,
    });
    req.on('response', resolve);
    req.on('timeout', () => req.destroy(new Error('the machine did not answer in time')));
    req.on('error', (err) => reject(new HangarError('UPSTREAM_UNREACHABLE', `Nothing answered on port ${port} of machine ${id} (${err.message}).`, { machine_id: id, port: Number(port) })));
    const body = request.body as NodeJS.ReadableStream | undefined;
    if (body && typeof body.pipe === 'function') body.pipe(req);
    else req.end();
  });
  upstream.on('end', () => o.machines.touch(id));
  reply.code(upstream.statusCode ?? 502);
  for (const [k, v] of Object.entries(forwardable(upstream.headers))) reply.header(k, v);
  return reply.send(upstream);
}
