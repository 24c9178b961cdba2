import { HangarError } from '../../domain/errors.js';
import { defineRoute, type AnyRoute } from '../route.js';
import { ErrorSchema } from '../shared/schemas.js';
import { HealthSchema, ServerInfoSchema } from './schemas.js';

/** What the system routes need from the server. */
export interface SystemRoutesOptions {
  /** Facts for GET /v1/info. */
  info: () => Promise<Record<string, unknown>>;
  /** True once start-up (re-adoption) is done. */
  isReady: () => boolean;
}

/** Readiness and server facts (GET /openapi.json is the app's: it documents every surface). */
export function systemRoutes(o: SystemRoutesOptions): AnyRoute[] {
  return [
    defineRoute({
      method: 'GET',
      url: '/healthz',
      operationId: 'health',
      summary: 'Readiness',
      description: '200 once the server has re-adopted its machines and serves requests; 503 before.',
      tag: 'system',
      auth: 'public',
      responses: { 200: { description: 'Ready.', schema: HealthSchema }, 503: { description: 'Not ready.', schema: ErrorSchema } },
      handler: async () => {
        if (!o.isReady()) throw new HangarError('NOT_READY', 'The server is starting; retry in a moment.');
        return { status: 'ok' };
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/v1/info',
      operationId: 'getInfo',
      summary: 'Server facts: version, runtime, snapshot support, limits, templates',
      tag: 'system',
      auth: 'team',
      responses: { 200: { description: 'Facts.', schema: ServerInfoSchema } },
      handler: () => o.info(),
    }),
  ];
}
