/** The compute surface (seed 004): its routes, and the Fastify plugin that serves them. */
import type { FastifyPluginAsync } from 'fastify';
import type { ComputeService } from '../../service/compute-service.js';
import { registerRoutes, type AnyRoute, type SurfacePluginOptions } from '../route.js';
import { computeRoutes, type AskHosts } from './compute-routes.js';

/** Every compute route, in document order; `askHosts` samples other hosts' machines in a fleet. */
export function computeSurfaceRoutes(compute: ComputeService, askHosts?: AskHosts): AnyRoute[] {
  return computeRoutes(compute, askHosts);
}

/** The compute surface as a Fastify plugin: its routes in a scope of their own, with the app's parsers and error handler. */
export const computeSurface: FastifyPluginAsync<SurfacePluginOptions> = async (scope, { routes, authenticate }) => {
  registerRoutes(scope, routes, authenticate);
};
