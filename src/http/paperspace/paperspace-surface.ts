/** The Paperspace-style surface (seed 002): its routes, and the Fastify plugin that serves them with the seed's errors. */
import type { FastifyPluginAsync } from 'fastify';
import { errorBody, errorHandler } from '../error-mapping.js';
import { registerRoutes, type AnyRoute, type SurfacePluginOptions } from '../route.js';
import type { TemplateApi } from '../../service/template-api.js';
import { paperspaceRoutes, type PaperspaceRoutesOptions } from './paperspace-routes.js';
import { paperspaceTemplateRoutes } from './template-routes.js';

/** Every Paperspace-style route, in document order. */
export function paperspaceSurfaceRoutes(o: PaperspaceRoutesOptions & { templates: TemplateApi }): AnyRoute[] {
  return [...paperspaceRoutes(o), ...paperspaceTemplateRoutes(o.templates, o.basePath)];
}

/** The Paperspace-style surface as a Fastify plugin: its routes in a scope of their own, with the seed's error answers. */
export const paperspaceSurface: FastifyPluginAsync<SurfacePluginOptions> = async (scope, { routes, authenticate }) => {
  // The seed's error body is `{code, message, details?}` with the catalogue's codes and statuses (it names no codes of
  // its own): exactly the native body, so this scope renders it with the shared errorBody. The handler stays the
  // scope's own so that the seed's answers are decided here (the document names their schema PaperspaceError).
  scope.setErrorHandler(errorHandler(errorBody));
  registerRoutes(scope, routes, authenticate);
};
