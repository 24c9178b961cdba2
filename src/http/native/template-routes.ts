import type { Readable } from 'node:stream';
import type { TemplateBuildRecord } from '../../domain/template.js';
import type { TemplateApi } from '../../service/template-api.js';
import type { TemplateListing } from '../../service/template-service.js';
import { UPLOAD_TTL_MS } from '../../service/uploads.js';
import { defineRoute, type AnyRoute } from '../route.js';
import { EventStream } from '../shared/event-stream.js';
import { ErrorSchema } from '../shared/schemas.js';
import {
  BuildLogQuery,
  BuildParams,
  BuildTemplateBody,
  TemplateBuildSchema,
  TemplateListQuery,
  TemplatePageSchema,
  TemplateParams,
  TemplateSchema,
  UploadSchema,
} from './template-schemas.js';

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

/** The API form of a build. */
export function renderBuild(b: TemplateBuildRecord): Record<string, unknown> {
  return {
    id: b.id,
    template: b.name,
    version: b.version,
    status: b.status,
    error: b.error,
    created_at: iso(b.createdAt),
    finished_at: iso(b.finishedAt),
    logs_url: `/v1/templates/${b.name}/builds/${b.id}/logs`,
  };
}

/** The API form of a template: its newest build, and the current version a create gets. */
export function renderTemplate(l: TemplateListing, current: TemplateBuildRecord | null): Record<string, unknown> {
  if (l.kind === 'directory' || l.kind === 'on_demand') {
    const t = l.kind === 'directory' ? l.template : null;
    return {
      name: t?.name ?? (l as { name: string }).name,
      scope: 'server',
      kind: 'directory',
      status: t ? 'ready' : 'not_built',
      description: t?.description ?? 'Built on this host the first time a machine is created from it.',
      version: t ? 1 : null,
      created_at: t?.created_at ?? null,
      layers: t ? t.layers.length : null,
      size_bytes: null,
      start_snapshot: false,
      start_pid: null,
      latest_build: null,
    };
  }
  const b = l.build;
  const r = current?.result ?? null;
  return {
    name: b.name,
    scope: b.teamId === null ? 'server' : 'team',
    kind: 'built',
    status: b.status,
    description: (current ?? b).spec.description,
    version: current?.version ?? null,
    created_at: iso(current?.finishedAt ?? null),
    layers: r ? r.layers.length : null,
    size_bytes: r ? r.sizeBytes : null,
    start_snapshot: r ? r.startSnapshotId !== null : false,
    start_pid: r?.startPid ?? null,
    latest_build: renderBuild(b),
  };
}

const errors = { 401: { description: 'Missing or unknown API key.', schema: ErrorSchema } };
const notFound = { 404: { description: 'No such template (or build) for this team.', schema: ErrorSchema } };

/** Templates: builds, listing, deletion, build logs; and the uploads builds take. */
export function templateRoutes(api: TemplateApi): AnyRoute[] {
  return [
    defineRoute({
      method: 'POST',
      url: '/v1/uploads',
      operationId: 'createUpload',
      summary: 'Send an archive for a template build',
      description:
        'The body (any media type) is stored as is, for the team, for 24 hours: an image archive for `source.image.upload_id` ' +
        '(OCI archive, OCI layout tar or docker archive, as `podman save` or `skopeo copy` write them) or a tar for a `copy` step.',
      tag: 'templates',
      auth: 'team',
      streamBody: { description: 'The archive.', contentType: 'application/octet-stream' },
      status: 201,
      responses: {
        201: { description: 'The upload.', schema: UploadSchema },
        ...errors,
        413: { description: 'BODY_TOO_LARGE: past HANGAR_MAX_UPLOAD_MB.', schema: ErrorSchema },
      },
      handler: async ({ caller, request }) => {
        const u = await api.upload(caller, request.body as Readable);
        return { upload_id: u.id, size_bytes: u.sizeBytes, expires_at: new Date(u.createdAt + UPLOAD_TTL_MS).toISOString() };
      },
    }),
    defineRoute({
      method: 'POST',
      url: '/v1/templates',
      operationId: 'buildTemplate',
      summary: 'Build a template (a new version of its name)',
      description:
        'Starts a build and answers at once with it (status building); follow its log at logs_url. The new version becomes the ' +
        'one creates get only when the build ends ready; a failed build (error, with the failing step) leaves the name as it was.',
      tag: 'templates',
      auth: 'team',
      body: BuildTemplateBody,
      status: 202,
      responses: {
        202: { description: 'The build, started.', schema: TemplateBuildSchema },
        ...errors,
        400: { description: 'VALIDATION_FAILED: a field is malformed.', schema: ErrorSchema },
        403: { description: 'FORBIDDEN: server_wide or source.image.path without an admin key.', schema: ErrorSchema },
        409: { description: 'TEMPLATE_NAME_TAKEN: the name is a server template.', schema: ErrorSchema },
        422: { description: 'UNKNOWN_TEMPLATE (source.template), UNKNOWN_UPLOAD, or UNSUPPORTED_OPERATION (start_cmd without CRIU).', schema: ErrorSchema },
      },
      handler: async ({ caller, body }) => renderBuild(await api.build(caller, body)),
    }),
    defineRoute({
      method: 'GET',
      url: '/v1/templates',
      operationId: 'listTemplates',
      summary: 'List the templates the team sees, by name',
      description: 'Server templates (base, desktop, python, node, and server-wide built ones) and the team\'s own.',
      tag: 'templates',
      auth: 'team',
      query: TemplateListQuery,
      responses: { 200: { description: 'One page.', schema: TemplatePageSchema }, ...errors, 400: { description: 'INVALID_NEXT_TOKEN.', schema: ErrorSchema } },
      handler: async ({ caller, query }) => {
        const page = await api.list(caller, query.limit ?? 100, query.next_token);
        return { items: page.items.map((l) => renderTemplate(l.listing, l.current)), next_token: page.nextToken };
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/v1/templates/:name',
      operationId: 'getTemplate',
      summary: 'Get a template',
      tag: 'templates',
      auth: 'team',
      params: TemplateParams,
      responses: { 200: { description: 'The template.', schema: TemplateSchema }, ...errors, ...notFound },
      handler: async ({ caller, params }) => {
        const t = await api.get(caller, params.name);
        return renderTemplate(t.listing, t.current);
      },
    }),
    defineRoute({
      method: 'DELETE',
      url: '/v1/templates/:name',
      operationId: 'deleteTemplate',
      summary: 'Delete a template (every version)',
      description: 'Refused (409 TEMPLATE_IN_USE) while a machine or snapshot runs on any version; layers other templates share stay.',
      tag: 'templates',
      auth: 'team',
      params: TemplateParams,
      status: 204,
      responses: {
        204: { description: 'Deleted.' },
        ...errors,
        403: { description: 'FORBIDDEN: a directory template, or a server-wide one without an admin key.', schema: ErrorSchema },
        ...notFound,
        409: { description: 'TEMPLATE_IN_USE: machines or snapshots on it, or a build running.', schema: ErrorSchema },
      },
      handler: async ({ caller, params }) => {
        await api.remove(caller, params.name);
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/v1/templates/:name/builds/:build_id',
      operationId: 'getTemplateBuild',
      summary: 'Get a build',
      tag: 'templates',
      auth: 'team',
      params: BuildParams,
      responses: { 200: { description: 'The build.', schema: TemplateBuildSchema }, ...errors, ...notFound },
      handler: async ({ caller, params }) => renderBuild(await api.getBuild(caller, params.name, params.build_id)),
    }),
    defineRoute({
      method: 'GET',
      url: '/v1/templates/:name/builds/:build_id/logs',
      operationId: 'getTemplateBuildLogs',
      summary: "A build's log, live or whole",
      description:
        'With Accept: text/event-stream, server-sent events: `log` per line (id = line number; reconnect with Last-Event-ID or ' +
        '?after=N to resume), then `end` with the build\'s status and error. Otherwise the log so far as text/plain.',
      tag: 'templates',
      auth: 'team',
      params: BuildParams,
      query: BuildLogQuery,
      responses: {
        200: { description: 'The log.', contentType: 'text/plain' },
        ...errors,
        ...notFound,
      },
      handler: async ({ caller, params, query, request, reply }) => {
        const b = await api.getBuild(caller, params.name, params.build_id);
        if (!String(request.headers.accept ?? '').includes('text/event-stream')) {
          reply.header('content-type', 'text/plain; charset=utf-8');
          return api.logText(b.id);
        }
        const lastId = Number(request.headers['last-event-id']);
        const after = query.after ?? (Number.isInteger(lastId) && lastId >= 0 ? lastId : 0);
        const stream = new EventStream(reply);
        let stop: () => void = () => undefined;
        let chain = Promise.resolve();
        await new Promise<void>((resolve) => {
          reply.raw.once('close', () => {
            stop();
            resolve();
          });
          void api
            .follow(b.id, after, (e) => {
              chain = chain.then(async () => {
                if (e !== null) return stream.send('log', { line: e.line }, String(e.n));
                const done = await api.getBuild(caller, params.name, params.build_id);
                await stream.send('end', { status: done.status, error: done.error });
                stream.end();
                resolve();
              });
            })
            .then((s) => (stop = s));
        });
        stop();
      },
    }),
  ];
}
