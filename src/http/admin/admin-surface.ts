/** The admin surface (teams, users, API keys, warm pools): its routes, and the Fastify plugin that serves them. */
import type { FastifyPluginAsync } from 'fastify';
import type { AuthService } from '../../service/auth-service.js';
import type { Metrics } from '../../service/metrics.js';
import type { QuotaService } from '../../service/quotas.js';
import type { WarmPoolService } from '../../service/warm-pools.js';
import { registerRoutes, type AnyRoute, type SurfacePluginOptions } from '../route.js';
import { hostRoutes, type HostListing } from './host-routes.js';
import { metricsRoutes } from './metrics-routes.js';
import { teamRoutes } from './team-routes.js';
import { warmPoolRoutes } from './warm-pool-routes.js';

/** The services the admin routes call. */
export interface AdminSurfaceOptions {
  auth: AuthService;
  quotas: QuotaService;
  pools: WarmPoolService;
  /** The clock of created and revoked times (the machine service's, which tests move). */
  now: () => number;
  metrics: Metrics;
  /** The hosts sharing the store. */
  hosts: HostListing;
}

/** Every admin route, in document order. */
export function adminSurfaceRoutes(o: AdminSurfaceOptions): AnyRoute[] {
  return [...teamRoutes(o.auth, o.quotas, o.now), ...warmPoolRoutes(o.pools), ...metricsRoutes(o.metrics), ...hostRoutes(o.hosts)];
}

/** The admin surface as a Fastify plugin: its routes in a scope of their own, with the app's parsers and error handler. */
export const adminSurface: FastifyPluginAsync<SurfacePluginOptions> = async (scope, { routes, authenticate }) => {
  registerRoutes(scope, routes, authenticate);
};
