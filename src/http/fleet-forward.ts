/**
 * Requests for a machine another host runs are forwarded to that host, whole: method, path,
 * headers and body stream there, and its answer (a stream too: exec output, downloads,
 * server-sent events) streams back. WebSocket upgrades (terminals, desktop, ingress) are
 * spliced through the same way. A template build's status and log go to the host running it.
 * An API server (capacity 0) sends uploads on to a host, whose tag their ids carry.
 * Creates and template builds are placed: they go to the host with the most free capacity,
 * from a snapshot to the host that holds the snapshot's files, of a built template to the
 * host holding its layers, one a warm pool can serve to a host with an idle pool machine.
 *
 * The receiving host authenticates and checks the request itself (both read the same store);
 * this server only chooses where it goes. A forwarded request carries `X-Hangar-Forwarded-By`
 * and is never forwarded again. With no other host up, nothing here runs.
 */
import { Agent, request as httpRequest, type ClientRequest, type IncomingHttpHeaders, type IncomingMessage, type OutgoingHttpHeaders, type RequestOptions } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { Duplex } from 'node:stream';
import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { HangarError } from '../domain/errors.js';
import { MACHINE_ID_PATTERN } from '../domain/ids.js';
import type { HostTarget } from '../service/host-service.js';
import { errorBody } from './error-mapping.js';
import { refuseUpgrade } from './websocket.js';

export const FORWARDED_BY = 'x-hangar-forwarded-by';

/** Headers that describe one hop, not the message (RFC 9110 7.6.1). */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade']);
/** `{port}-{machine id}` as the first label of an ingress or envd host name. */
const HOST_LABEL = /^\d+-(mch_[a-z0-9]+)\./;

/** What forwarding needs to know of the fleet. */
export interface FleetRouter {
  hostId: string;
  hasPeers(): boolean;
  /** Where a machine of this host is reached, or null to answer here. */
  targetOf(hostId: string | null): HostTarget | null;
  /** Where a new machine goes, or null for here. */
  place(): Promise<HostTarget | null>;
  /** Count a create forwarded to a host until the returned function is called. */
  reserve(hostId: string): () => void;
  /** The host that runs a machine (null: unknown, or none). */
  machineHost(id: string): Promise<string | null>;
  /** The host that holds a snapshot's files (its machine's host). */
  snapshotHost(id: string): Promise<string | null>;
  /** The host holding the layers of the built template a create names for this caller (null: a directory template, or unknown). */
  templateHost(authorization: string | undefined, name: string): Promise<string | null>;
  /**
   * The host with the most idle machines of a warm pool that a create of `template` with
   * `config` (the defaults filled in there) may take: this one on a tie; null when no host has one.
   */
  poolHost(template: string, config: Record<string, number>): Promise<string | null>;
  /** The host that runs (or ran) a template build, and keeps its log. */
  buildHost(id: string): Promise<string | null>;
  /** The host keeping an upload (its id carries the host's tag), or null. */
  uploadHost(id: string): string | null;
  /** Where this server, when it takes no machines, sends an upload of the caller `seed`; null: keep it here. */
  uploadTarget(seed: string): HostTarget | null;
  /** False on an API server (HANGAR_HOST_CAPACITY=0): uploads are sent on to a host, which can build. */
  takesMachines: boolean;
}

/**
 * The template and config of a create that a warm pool could serve, or null: a native one
 * (`POST /v1/machines`) or E2B's (`/sandboxes`, default resources). One from a snapshot, with
 * volumes, a private network, an outbound policy or another isolation tier always starts cold
 * (the host decides finally; this only routes).
 */
export function poolRequestOf(route: string, body: Record<string, unknown> | undefined): { template: string; config: Record<string, number> } | null {
  const b = body ?? {};
  if (route === '/sandboxes' || route === '/v2/sandboxes') {
    const t = b.templateID;
    if (typeof t !== 'string' || t.startsWith('snap_') || b.allow_internet_access === false) return null;
    if ((Array.isArray(b.volumeMounts) && b.volumeMounts.length > 0) || (typeof b.network === 'object' && b.network !== null && Object.keys(b.network).length > 0)) return null;
    return { template: t, config: {} };
  }
  if (route !== '/v1/machines') return null;
  if (b.snapshot_id !== undefined || b.network_id !== undefined || b.network !== undefined) return null;
  if (b.volumes !== undefined && !(Array.isArray(b.volumes) && b.volumes.length === 0)) return null;
  if (b.isolation !== undefined && b.isolation !== 'container') return null;
  const template = b.template === undefined ? 'base' : b.template;
  if (typeof template !== 'string') return null;
  const config: Record<string, number> = {};
  if (b.config !== undefined) {
    if (typeof b.config !== 'object' || b.config === null) return null;
    for (const [k, v] of Object.entries(b.config)) {
      if (typeof v !== 'number') return null;
      config[k] = v;
    }
  }
  return { template, config };
}

/** `/v1/templates/{name}/builds/{build id}…`: a build's status and log, which its host keeps. */
const BUILD_PATH = /^\/v1\/templates\/[^/]+\/builds\/(bld_[a-z0-9]{1,64})(?:\/|$)/;

/** The template build a request is about, or null. */
export function buildOfRequest(url: string): string | null {
  return BUILD_PATH.exec(url.split('?')[0]!)?.[1] ?? null;
}

/** The first upload a template build's body names (`source.image.upload_id`, a `copy` step's), or null. */
export function uploadOfBuild(body: Record<string, unknown> | undefined): string | null {
  const field = (o: unknown, ...path: string[]): unknown => path.reduce<unknown>((at, k) => (typeof at === 'object' && at !== null ? (at as Record<string, unknown>)[k] : undefined), o);
  const named = [field(body, 'source', 'image', 'upload_id'), ...(Array.isArray(body?.steps) ? body.steps.map((s) => field(s, 'copy', 'upload_id')) : [])];
  return named.find((v): v is string => typeof v === 'string') ?? null;
}

/** The machine a request is about: a path segment, the host name's first label, or E2B's sandbox header. */
export function machineOfRequest(url: string, headers: IncomingHttpHeaders): string | null {
  const path = url.split('?')[0]!;
  for (const seg of path.split('/')) if (MACHINE_ID_PATTERN.test(seg)) return seg;
  const host = HOST_LABEL.exec((headers.host ?? '').toLowerCase());
  if (host) return host[1]!;
  const sandbox = headers['e2b-sandbox-id'];
  return typeof sandbox === 'string' && MACHINE_ID_PATTERN.test(sandbox) ? sandbox : null;
}

function forwardedHeaders(headers: IncomingHttpHeaders, self: string, remote: string | undefined, keepUpgrade: boolean): OutgoingHttpHeaders {
  const named = new Set(String(headers.connection ?? '').toLowerCase().split(',').map((s) => s.trim()).filter(Boolean));
  const out: OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(headers)) {
    if (v === undefined) continue;
    if (!keepUpgrade && (HOP_BY_HOP.has(k) || named.has(k))) continue;
    out[k] = v;
  }
  // Chunked bodies are re-chunked by Node: the length is unknown, the stream is the same.
  if (!keepUpgrade && headers['transfer-encoding'] !== undefined) out['transfer-encoding'] = 'chunked';
  out[FORWARDED_BY] = self;
  const prior = headers['x-forwarded-for'];
  if (remote) out['x-forwarded-for'] = prior ? `${String(prior)}, ${remote}` : remote;
  return out;
}

function responseHeaders(res: IncomingMessage): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(res.headers)) if (v !== undefined && !HOP_BY_HOP.has(k)) out[k] = v;
  return out;
}

/** The status line and headers of another host's answer, as this server writes them on the client's socket. */
function answerHead(answer: IncomingMessage): string {
  const lines = [`HTTP/1.1 ${answer.statusCode ?? 502} ${answer.statusMessage ?? ''}`];
  for (let i = 0; i < answer.rawHeaders.length; i += 2) lines.push(`${answer.rawHeaders[i]}: ${answer.rawHeaders[i + 1]}`);
  return `${lines.join('\r\n')}\r\n\r\n`;
}

const unreachable = (t: HostTarget, err: Error): HangarError =>
  new HangarError('HOST_UNREACHABLE', `The machine's host ${t.hostId} did not answer (${err.message}); retry, or wait until it is marked down.`, { host_id: t.hostId });

/** Forwarding of one server: an onRequest hook for HTTP, and `upgrade` for WebSocket upgrades. */
export class FleetForwarding {
  private readonly agent = new Agent({ keepAlive: true, maxFreeSockets: 16 });
  private readonly tlsAgent = new HttpsAgent({ keepAlive: true, maxFreeSockets: 16 });

  constructor(
    private readonly o: { router: FleetRouter; createRoutes: ReadonlySet<string>; log: FastifyBaseLogger },
  ) {}

  /** Register the hooks on the root instance, before every other onRequest hook. */
  register(app: FastifyInstance): void {
    app.addHook('onRequest', async (request, reply) => {
      if (!this.o.router.hasPeers() || request.headers[FORWARDED_BY] !== undefined) return;
      const url = request.raw.url ?? '/';
      if (!this.o.router.takesMachines && request.method === 'POST' && url.split('?')[0] === '/v1/uploads') {
        const key = request.headers['x-api-key'];
        const upload = this.o.router.uploadTarget(String(request.headers.authorization ?? key ?? ''));
        if (upload) return this.forward(request, reply, upload, null);
      }
      const machine = machineOfRequest(url, request.headers);
      const build = machine === null ? buildOfRequest(url) : null;
      if (machine === null && build === null) return;
      const host = machine !== null ? await this.o.router.machineHost(machine) : await this.o.router.buildHost(build!);
      const target = this.o.router.targetOf(host);
      if (target) return this.forward(request, reply, target, null);
    });
    // Creates are placed once their body is read: one from a snapshot goes where the snapshot is.
    app.addHook('preHandler', async (request, reply) => {
      if (request.method !== 'POST' || !this.o.createRoutes.has(request.routeOptions.url ?? '')) return;
      if (!this.o.router.hasPeers() || request.headers[FORWARDED_BY] !== undefined) return;
      const body = request.body as Record<string, unknown> | undefined;
      const target = await this.placeCreate(request, body);
      // Counted against the host it goes to until answered, here as elsewhere: concurrent creates see each other.
      reply.raw.once('close', this.o.router.reserve(target?.hostId ?? this.o.router.hostId));
      if (!target) return;
      return this.forward(request, reply, target, Buffer.from(JSON.stringify(body ?? {})));
    });
  }

  /**
   * Where a create (or a template build) goes: a fork to its snapshot's machine's host
   * (placed when that host is not up: another sharing its snapshots directory can start it),
   * a built template to the host holding its layers, a build from an upload to the host
   * keeping it (both answered here when that host is this one or not up), one a warm pool can
   * serve to the host with the most idle machines of that pool, anything else by placement.
   */
  private async placeCreate(request: FastifyRequest, body: Record<string, unknown> | undefined): Promise<HostTarget | null> {
    const { router } = this.o;
    if (typeof body?.snapshot_id === 'string') {
      const holder = await router.snapshotHost(body.snapshot_id);
      // Its host is down or gone: a host sharing its snapshots directory can start it, so it is placed.
      return holder === null || holder === router.hostId ? null : (router.targetOf(holder) ?? router.place());
    }
    const source = typeof body?.source === 'object' && body.source !== null ? (body.source as Record<string, unknown>) : undefined;
    const upload = uploadOfBuild(body);
    if (upload !== null) return router.targetOf(router.uploadHost(upload));
    // Native `template`, E2B `templateID`, Paperspace-style `templateId`, a build's `source.template`.
    const template = [body?.template, body?.templateID, body?.templateId, source?.template].find((v): v is string => typeof v === 'string');
    if (template !== undefined) {
      const key = request.headers['x-api-key'];
      const authorization = request.headers.authorization ?? (typeof key === 'string' ? `Bearer ${key}` : undefined);
      const holder = await router.templateHost(authorization, template);
      if (holder !== null) return router.targetOf(holder);
    }
    // A create a warm pool can serve goes where a pool machine is idle: it answers as fast as on one host.
    const pooled = poolRequestOf(request.routeOptions.url ?? '', body);
    const poolHolder = pooled ? await router.poolHost(pooled.template, pooled.config) : null;
    if (poolHolder !== null) return poolHolder === router.hostId ? null : (router.targetOf(poolHolder) ?? router.place());
    return router.place();
  }

  /** Send the request to `target` and its answer back; `body`: the bytes to send (a parsed body), else the request's own stream. */
  private async forward(request: FastifyRequest, reply: FastifyReply, target: HostTarget, body: Buffer | null): Promise<void> {
    const headers = forwardedHeaders(request.headers, this.o.router.hostId, request.ip, false);
    if (body) {
      delete headers['transfer-encoding'];
      headers['content-length'] = String(body.length);
    }
    const url = new URL(request.raw.url ?? '/', target.url);
    await reply.hijack();
    const res = reply.raw;
    await new Promise<void>((resolve) => {
      const up = this.send(url, { method: request.method, headers }, true);
      const fail = (err: Error): void => {
        this.o.log.warn({ host: target.hostId, err }, 'a forwarded request failed');
        if (!res.headersSent) {
          const e = unreachable(target, err);
          res.writeHead(503, { 'content-type': 'application/json; charset=utf-8' }).end(JSON.stringify(errorBody(e)));
        } else res.destroy();
        resolve();
      };
      up.on('error', fail);
      up.on('response', (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.statusMessage, responseHeaders(answer));
        answer.pipe(res);
        answer.on('error', () => res.destroy());
        answer.on('end', resolve);
      });
      // The client went away: the forwarded request goes too (a follower stops, an upload is cut).
      res.on('close', () => {
        if (!res.writableFinished) up.destroy();
        resolve();
      });
      if (body) up.end(body);
      else request.raw.pipe(up);
    });
  }

  /**
   * Splice a WebSocket upgrade through to the machine's host; false when it is answered
   * here (no other host up, this host's machine, or already forwarded).
   */
  async upgrade(request: IncomingMessage, socket: Duplex, head: Buffer): Promise<boolean> {
    if (!this.o.router.hasPeers() || request.headers[FORWARDED_BY] !== undefined) return false;
    const id = machineOfRequest(request.url ?? '/', request.headers);
    if (id === null) return false;
    const target = this.o.router.targetOf(await this.o.router.machineHost(id));
    if (!target) return false;
    const headers = forwardedHeaders(request.headers, this.o.router.hostId, request.socket.remoteAddress, true);
    const up = this.send(new URL(request.url ?? '/', target.url), { method: request.method, headers }, false);
    up.on('error', (err) => {
      this.o.log.warn({ host: target.hostId, err }, 'a forwarded upgrade failed');
      const e = unreachable(target, err);
      refuseUpgrade(socket, 503, errorBody(e));
    });
    // Refused there (401, 404, 409…): the same answer here.
    up.on('response', (answer) => {
      socket.write(answerHead(answer));
      answer.pipe(socket);
    });
    up.on('upgrade', (answer, upSocket, upHead) => {
      socket.write(answerHead(answer));
      if (upHead.length > 0) socket.write(upHead);
      if (head.length > 0) upSocket.write(head);
      upSocket.on('error', () => socket.destroy());
      socket.on('error', () => upSocket.destroy());
      upSocket.on('close', () => socket.destroy());
      socket.on('close', () => upSocket.destroy());
      upSocket.pipe(socket);
      socket.pipe(upSocket);
    });
    up.end();
    return true;
  }

  /**
   * The same GET as `request` (its path, query and credentials) asked of each host, for an
   * answer gathered from several (a listing of what they run): each host's JSON body when it
   * answered 200 within `timeoutMs`. Hosts that fail or are slow are left out (logged), and a
   * forwarded request asks no one.
   */
  async gather(request: FastifyRequest, hostIds: readonly string[], timeoutMs = 3_000): Promise<Map<string, unknown>> {
    const out = new Map<string, unknown>();
    if (request.headers[FORWARDED_BY] !== undefined) return out;
    const headers = forwardedHeaders(request.headers, this.o.router.hostId, request.ip, false);
    delete headers['content-length'];
    delete headers['transfer-encoding'];
    await Promise.all(
      hostIds.map(async (hostId) => {
        const target = this.o.router.targetOf(hostId);
        if (!target) return;
        try {
          const body = await new Promise<string>((resolve, reject) => {
            const up = this.send(new URL(request.raw.url ?? '/', target.url), { method: 'GET', headers, timeout: timeoutMs }, true);
            up.on('timeout', () => up.destroy(new Error(`no answer within ${timeoutMs} ms`)));
            up.on('error', reject);
            up.on('response', (answer) => {
              const chunks: Buffer[] = [];
              answer.on('data', (c: Buffer) => chunks.push(c));
              answer.on('error', reject);
              answer.on('end', () => (answer.statusCode === 200 ? resolve(Buffer.concat(chunks).toString('utf8')) : reject(new Error(`answered ${answer.statusCode}`))));
            });
            up.end();
          });
          out.set(hostId, JSON.parse(body) as unknown);
        } catch (err) {
          this.o.log.warn({ host: hostId, err }, 'a host did not answer a gathered request');
        }
      }),
    );
    return out;
  }

  /** A request to another host, over https when its URL says so; `pooled`: on a kept-alive connection (never for an upgrade). */
  private send(url: URL, options: RequestOptions, pooled: boolean): ClientRequest {
    const tls = url.protocol === 'https:';
    const agent = pooled ? (tls ? this.tlsAgent : this.agent) : undefined;
    return tls ? httpsRequest(url, { ...options, ...(agent ? { agent } : {}) }) : httpRequest(url, { ...options, ...(agent ? { agent } : {}) });
  }

  close(): void {
    this.agent.destroy();
    this.tlsAgent.destroy();
  }
}
