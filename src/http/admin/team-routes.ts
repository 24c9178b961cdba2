import { defaultBurst, type ApiKeyRecord, type Team, type User } from '../../domain/team.js';
import type { TeamQuotas } from '../../domain/quota.js';
import type { AuthService } from '../../service/auth-service.js';
import type { QuotaService } from '../../service/quotas.js';
import { defineRoute, type AnyRoute } from '../route.js';
import { ErrorSchema, TeamQuotasSchema, TeamQuotasViewSchema } from '../shared/schemas.js';
import {
  ApiKeyListSchema,
  ApiKeyParams,
  ApiKeySchema,
  RotateApiKeyBody,
  RotatedApiKeySchema,
  CreateApiKeyBody,
  CreateTeamBody,
  CreateUserBody,
  TeamListSchema,
  TeamParams,
  TeamSchema,
  UserListSchema,
  UserParams,
  UserSchema,
} from './schemas.js';

const userView = (u: User) => ({
  id: u.id,
  team_id: u.teamId,
  email: u.email,
  first_name: u.firstName,
  last_name: u.lastName,
  role: u.role,
  created_at: new Date(u.createdAt).toISOString(),
});

const teamView = (t: Team) => ({ id: t.id, name: t.name, is_admin: t.isAdmin, created_at: new Date(t.createdAt).toISOString() });
const keyView = (k: ApiKeyRecord) => ({
  id: k.id,
  team_id: k.teamId,
  name: k.name,
  created_at: new Date(k.createdAt).toISOString(),
  revoked_at: k.revokedAt === null ? null : new Date(k.revokedAt).toISOString(),
  user_id: k.userId,
  read_only: k.readOnly,
  machine_id: k.machineId,
  expires_at: k.expiresAt === null ? null : new Date(k.expiresAt).toISOString(),
  rate_limit: k.rateLimit === null ? null : { per_second: k.rateLimit.perSecond, burst: k.rateLimit.burst },
});
const keyOptions = (
  body: { read_only?: boolean; machine_id?: string; expires_in_s?: number; rate_limit?: { per_second: number; burst?: number } },
  at: number,
) => ({
  readOnly: body.read_only,
  machineId: body.machine_id,
  expiresAt: body.expires_in_s === undefined ? null : at + body.expires_in_s * 1000,
  rateLimit:
    body.rate_limit === undefined ? null
    : { perSecond: body.rate_limit.per_second, burst: body.rate_limit.burst ?? defaultBurst(body.rate_limit.per_second) },
});

const adminErrors = {
  400: { description: 'Invalid request.', schema: ErrorSchema },
  401: { description: 'Missing or unknown API key.', schema: ErrorSchema },
  403: { description: 'Not an admin key.', schema: ErrorSchema },
  404: { description: 'No such team, user or key.', schema: ErrorSchema },
};

/** Admin endpoints: teams, their users and API keys. */
export function teamRoutes(auth: AuthService, quotas: QuotaService, now: () => number): AnyRoute[] {
  const quotasView = async (teamId: string) => ({ team_id: teamId, quotas: await quotas.quotas(teamId), usage: await quotas.usage(teamId) });
  return [
    defineRoute({
      method: 'POST',
      url: '/v1/admin/teams',
      operationId: 'createTeam',
      summary: 'Create a team',
      tag: 'admin',
      auth: 'admin',
      body: CreateTeamBody,
      status: 201,
      responses: { 201: { description: 'The team.', schema: TeamSchema }, ...adminErrors },
      handler: async ({ body }) => teamView(await auth.createTeam(body.name, now())),
    }),
    defineRoute({
      method: 'GET',
      url: '/v1/admin/teams',
      operationId: 'listTeams',
      summary: 'List teams',
      tag: 'admin',
      auth: 'admin',
      responses: { 200: { description: 'All teams.', schema: TeamListSchema }, ...adminErrors },
      handler: async () => ({ items: (await auth.listTeams()).map(teamView) }),
    }),
    defineRoute({
      method: 'GET',
      url: '/v1/admin/teams/:id/quotas',
      operationId: 'getTeamQuotas',
      summary: "A team's quotas and what it holds",
      tag: 'admin',
      auth: 'admin',
      params: TeamParams,
      responses: { 200: { description: 'The quotas (absent: no ceiling) and the usage.', schema: TeamQuotasViewSchema }, ...adminErrors },
      handler: async ({ params }) => {
        await auth.getTeam(params.id);
        return quotasView(params.id);
      },
    }),
    defineRoute({
      method: 'PUT',
      url: '/v1/admin/teams/:id/quotas',
      operationId: 'setTeamQuotas',
      summary: "Replace a team's quotas",
      description:
        'Each field is a ceiling on what the team holds at once; a field left out has none, and `{}` removes them all. A ceiling below ' +
        'what the team holds now is accepted: nothing is stopped, and what would add to it is refused with 429 QUOTA_EXCEEDED until the team is under it.',
      tag: 'admin',
      auth: 'admin',
      params: TeamParams,
      body: TeamQuotasSchema,
      responses: { 200: { description: 'The quotas now, and the usage.', schema: TeamQuotasViewSchema }, ...adminErrors },
      handler: async ({ params, body }) => {
        await auth.getTeam(params.id);
        const set: TeamQuotas = {};
        for (const [k, v] of Object.entries(body)) if (v !== undefined) set[k as keyof TeamQuotas] = v;
        await quotas.setQuotas(params.id, set);
        return quotasView(params.id);
      },
    }),
    defineRoute({
      method: 'POST',
      url: '/v1/admin/teams/:id/keys',
      operationId: 'createApiKey',
      summary: 'Issue an API key for a team',
      description: 'The response is the only time the key is shown; only its SHA-256 is stored.',
      tag: 'admin',
      auth: 'admin',
      params: TeamParams,
      body: CreateApiKeyBody,
      status: 201,
      responses: { 201: { description: 'The key, with its secret.', schema: ApiKeySchema }, ...adminErrors },
      handler: async ({ params, body }) => {
        const at = now();
        const issued = await auth.issueKey(params.id, body.name ?? 'api key', at, keyOptions(body, at));
        return { ...keyView(issued.record), key: issued.secret };
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/v1/admin/teams/:id/keys',
      operationId: 'listApiKeys',
      summary: "List a team's API keys (without secrets)",
      tag: 'admin',
      auth: 'admin',
      params: TeamParams,
      responses: { 200: { description: 'The keys.', schema: ApiKeyListSchema }, ...adminErrors },
      handler: async ({ params }) => ({ items: (await auth.listKeys(params.id)).map(keyView) }),
    }),
    defineRoute({
      method: 'POST',
      url: '/v1/admin/teams/:id/users',
      operationId: 'createUser',
      summary: 'Add a user to a team',
      description: 'Emails are unique within a team (compared lower-cased). Issue the user a key with POST /v1/admin/users/{id}/keys.',
      tag: 'admin',
      auth: 'admin',
      params: TeamParams,
      body: CreateUserBody,
      status: 201,
      responses: { 201: { description: 'The user.', schema: UserSchema }, ...adminErrors },
      handler: async ({ params, body }) =>
        userView(await auth.createUser(params.id, { email: body.email, firstName: body.first_name, lastName: body.last_name, role: body.role }, now())),
    }),
    defineRoute({
      method: 'GET',
      url: '/v1/admin/teams/:id/users',
      operationId: 'listUsers',
      summary: "List a team's users",
      tag: 'admin',
      auth: 'admin',
      params: TeamParams,
      responses: { 200: { description: 'The users, oldest first.', schema: UserListSchema }, ...adminErrors },
      handler: async ({ params }) => ({ items: (await auth.listUsers(params.id)).map(userView) }),
    }),
    defineRoute({
      method: 'GET',
      url: '/v1/admin/users/:id',
      operationId: 'getUser',
      summary: 'Get a user',
      tag: 'admin',
      auth: 'admin',
      params: UserParams,
      responses: { 200: { description: 'The user.', schema: UserSchema }, ...adminErrors },
      handler: async ({ params }) => userView(await auth.getUser(params.id)),
    }),
    defineRoute({
      method: 'POST',
      url: '/v1/admin/users/:id/keys',
      operationId: 'createUserApiKey',
      summary: 'Issue an API key that acts as a user',
      description: 'The response is the only time the key is shown; only its SHA-256 is stored. Revoke it with DELETE /v1/admin/keys/{id}.',
      tag: 'admin',
      auth: 'admin',
      params: UserParams,
      body: CreateApiKeyBody,
      status: 201,
      responses: { 201: { description: 'The key, with its secret.', schema: ApiKeySchema }, ...adminErrors },
      handler: async ({ params, body }) => {
        const at = now();
        const issued = await auth.issueUserKey(params.id, body.name ?? 'user key', at, keyOptions(body, at));
        return { ...keyView(issued.record), key: issued.secret };
      },
    }),
    defineRoute({
      method: 'POST',
      url: '/v1/admin/keys/:id/rotate',
      operationId: 'rotateApiKey',
      summary: 'Rotate an API key',
      description:
        'Issues a new key with the same team, user, name and scope, and lets the old one work for overlap_s more seconds (3600 by default; ' +
        'never longer than it would have), so clients can switch without a gap. The new secret is in this answer only.',
      tag: 'admin',
      auth: 'admin',
      params: ApiKeyParams,
      body: RotateApiKeyBody,
      status: 201,
      responses: { 201: { description: 'The new key with its secret, and the old one with its expiry.', schema: RotatedApiKeySchema }, ...adminErrors },
      handler: async ({ params, body }) => {
        const { issued, previous } = await auth.rotateKey(params.id, (body.overlap_s ?? 3600) * 1000, now());
        return { key: { ...keyView(issued.record), key: issued.secret }, previous: keyView(previous) };
      },
    }),
    defineRoute({
      method: 'DELETE',
      url: '/v1/admin/keys/:id',
      operationId: 'revokeApiKey',
      summary: 'Revoke an API key',
      tag: 'admin',
      auth: 'admin',
      params: ApiKeyParams,
      status: 204,
      responses: { 204: { description: 'Revoked.' }, ...adminErrors },
      handler: async ({ params }) => {
        await auth.revokeKey(params.id, now());
      },
    }),
  ];
}
