import type { MachineService } from '../../service/machine-service.js';
import { defineRoute, type AnyRoute } from '../route.js';
import { ErrorSchema, TeamQuotasViewSchema } from '../shared/schemas.js';

/** The caller's team's quotas (admins set them with PUT /v1/admin/teams/{id}/quotas). */
export function quotaRoutes(machines: MachineService): AnyRoute[] {
  return [
    defineRoute({
      method: 'GET',
      url: '/v1/quotas',
      operationId: 'getQuotas',
      summary: "Your team's quotas and what it holds",
      description:
        'Each quota is a ceiling on what the team holds at once (absent: none). A create, resume, resize, snapshot, volume or template build ' +
        'that would pass one is refused with 429 QUOTA_EXCEEDED naming it.',
      tag: 'system',
      auth: 'team',
      responses: { 200: { description: 'The quotas and the usage.', schema: TeamQuotasViewSchema }, 401: { description: 'Missing or unknown API key.', schema: ErrorSchema } },
      handler: async ({ caller }) => ({
        team_id: caller.team.id,
        quotas: await machines.quotas.quotas(caller.team.id),
        usage: await machines.quotas.usage(caller.team.id),
      }),
    }),
  ];
}
