/**
 * The E2B-compatible surface: E2B's control API (`/v2/sandboxes`, …) and envd, the
 * in-sandbox API (Connect RPC `process.Process/*`, `filesystem.Filesystem/*`, `/files`,
 * `/health`), both on Hangar's own port. The SDK reaches envd here when its `sandboxUrl`
 * (or E2B_SANDBOX_URL) is Hangar's URL: it names the sandbox in `E2b-Sandbox-Id`.
 * These routes follow E2B's own spec, so they are not part of Hangar's OpenAPI document.
 */
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { Readable } from 'node:stream';
import { HangarError } from '../../domain/errors.js';
import type { AuthService } from '../../service/auth-service.js';
import type { ComputeService } from '../../service/compute-service.js';
import type { FileService } from '../../service/file-service.js';
import type { FileWatchService } from '../../service/file-watch.js';
import type { MachineService } from '../../service/machine-service.js';
import type { ProcessService } from '../../service/process-service.js';
import type { PtyService } from '../../service/pty-service.js';
import { errorReply } from '../error-mapping.js';
import type { Authenticate } from '../route.js';
import { clientGone } from '../shared/client-gone.js';
import { ConnectError, ConnectStream, connectCodeOf, httpStatusOf, keepaliveMs, readBody, sendUnary, sendUnaryError, streamRequestMessage, unaryMessage } from './connect-wire.js';
import { registerControlRoutes } from './control-routes.js';
import { EnvdFilesystemService } from './envd-filesystem.js';
import { EnvdProcessService } from './envd-process.js';
import { EnvdSessions } from './envd-sessions.js';
import { resolveEnvdTarget, type EnvdTarget } from './envd-target.js';

/** What the E2B surface needs. */
export interface E2bSurfaceOptions {
  machines: MachineService;
  compute: ComputeService;
  auth: AuthService;
  processes: ProcessService;
  pty: PtyService;
  files: FileService;
  fileWatches: FileWatchService;
  authenticate: Authenticate;
}

type Unary = (t: EnvdTarget, message: unknown) => Promise<unknown>;
type Streaming = (t: EnvdTarget, message: unknown, stream: ConnectStream, keepaliveMs: number) => Promise<void>;

/** E2B's error body: the HTTP status as `code`, and the message. */
function e2bErrorBody(err: HangarError): Record<string, unknown> {
  return { code: err.status, message: err.message };
}

/** The E2B surface as a Fastify plugin. */
export const e2bSurface: FastifyPluginAsync<E2bSurfaceOptions> = async (app, o) => {
  await app.register(async (control) => {
    control.setErrorHandler((err, request, reply) => {
      const answer = errorReply(err, false, e2bErrorBody);
      if (answer.logMessage !== null) request.log.error({ err }, answer.logMessage);
      return reply.code(answer.status).headers(answer.headers).send(answer.body);
    });
    registerControlRoutes(control, { machines: o.machines, compute: o.compute, authenticate: o.authenticate });
  });

  const sessions = new EnvdSessions();
  const processes = new EnvdProcessService({ processes: o.processes, pty: o.pty, sessions });
  const filesystem = new EnvdFilesystemService({ files: o.files, fileWatches: o.fileWatches });
  const target = (request: FastifyRequest): Promise<EnvdTarget> => resolveEnvdTarget({ machines: o.machines, auth: o.auth }, request);

  await app.register(async (envd) => {
    // Bodies are read by the handlers: Connect envelopes, multipart and raw uploads are not JSON.
    envd.removeAllContentTypeParsers();
    envd.addContentTypeParser('*', (_request, payload, done) => done(null, payload));

    const unary = (handler: Unary) => async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
      reply.hijack();
      try {
        const body = await readBody(request.body as Readable);
        const t = await target(request);
        sendUnary(reply.raw, await handler(t, unaryMessage(request.headers['content-type'], body)));
      } catch (err) {
        logUnexpected(request, err);
        sendUnaryError(reply.raw, err);
      }
      return reply;
    };
    const streaming = (handler: Streaming) => async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
      reply.hijack();
      let message: unknown;
      let t: EnvdTarget;
      try {
        const body = await readBody(request.body as Readable);
        message = streamRequestMessage(request.headers['content-type'], body);
        t = await target(request);
      } catch (err) {
        // Still a stream: 200 with only the end-of-stream message, whose error the SDK raises as the call's.
        logUnexpected(request, err);
        const stream = new ConnectStream(reply.raw);
        stream.end(err);
        return reply;
      }
      const stream = new ConnectStream(reply.raw);
      try {
        await handler(t, message, stream, keepaliveMs(request.raw));
        stream.end();
      } catch (err) {
        logUnexpected(request, err);
        stream.end(err);
      }
      return reply;
    };

    envd.post('/process.Process/Start', streaming((t, m, s, k) => processes.start(t, m, s, k)));
    envd.post('/process.Process/Connect', streaming((t, m, s, k) => processes.connect(t, m, s, k)));
    envd.post('/process.Process/List', unary((t) => processes.list(t)));
    envd.post('/process.Process/SendInput', unary((t, m) => processes.sendInput(t, m)));
    envd.post('/process.Process/SendSignal', unary((t, m) => processes.sendSignal(t, m)));
    envd.post('/process.Process/CloseStdin', unary((t, m) => processes.closeStdin(t, m)));
    envd.post('/process.Process/Update', unary((t, m) => processes.update(t, m)));
    envd.post('/process.Process/StreamInput', unary(async () => {
      throw new ConnectError('unimplemented', 'StreamInput (client streaming) is not served; send input with SendInput.');
    }));
    envd.post('/filesystem.Filesystem/Stat', unary((t, m) => filesystem.stat(t, m)));
    envd.post('/filesystem.Filesystem/ListDir', unary((t, m) => filesystem.listDir(t, m)));
    envd.post('/filesystem.Filesystem/MakeDir', unary((t, m) => filesystem.makeDir(t, m)));
    envd.post('/filesystem.Filesystem/Move', unary((t, m) => filesystem.move(t, m)));
    envd.post('/filesystem.Filesystem/Remove', unary((t, m) => filesystem.remove(t, m)));
    envd.post('/filesystem.Filesystem/WatchDir', streaming((t, m, s, k) => filesystem.watchDir(t, m, s, k)));
    for (const name of ['CreateWatcher', 'GetWatcherEvents', 'RemoveWatcher']) {
      envd.post(`/filesystem.Filesystem/${name}`, unary(async () => {
        throw new ConnectError('unimplemented', `${name} (polled watchers) is not served; use WatchDir.`);
      }));
    }

    // envd's plain HTTP routes answer errors as `{code: <HTTP status>, message}`.
    const plain = (handler: (t: EnvdTarget, request: FastifyRequest, reply: FastifyReply) => Promise<unknown>) =>
      async (request: FastifyRequest, reply: FastifyReply): Promise<unknown> => {
        try {
          const t = await target(request);
          return await handler(t, request, reply);
        } catch (err) {
          logUnexpected(request, err);
          const status = err instanceof HangarError ? err.status : httpStatusOf(connectCodeOf(err).code);
          if (reply.sent || reply.raw.headersSent) {
            reply.raw.destroy();
            return reply;
          }
          return reply.code(status).send({ code: status, message: connectCodeOf(err).message });
        }
      };
    envd.get('/health', async (request, reply) => {
      try {
        await target(request);
        return reply.code(204).send();
      } catch (err) {
        // The SDK reads 502 as "the sandbox is gone" (E2B's proxy answers so for a stopped sandbox).
        const { code, message } = connectCodeOf(err);
        const status = code === 'unavailable' ? 502 : httpStatusOf(code);
        return reply.code(status).send({ code: status, message });
      }
    });
    envd.get('/files', plain(async (t, request, reply) => {
      const file = await filesystem.download(t, request, clientGone(reply));
      return reply.code(200).header('content-length', file.size).type('application/octet-stream').send(file.body);
    }));
    envd.post('/files', plain(async (t, request, reply) => reply.code(200).send(await filesystem.upload(t, request, clientGone(reply)))));
  });
};

function logUnexpected(request: FastifyRequest, err: unknown): void {
  if (!(err instanceof ConnectError) && !(err instanceof HangarError)) request.log.error({ err }, 'unhandled error in envd');
}
