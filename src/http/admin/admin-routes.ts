import { z } from 'zod';
import { USER_ROLES, type ApiKeyRecord, type Team, type User } from '../../domain/team.js';
import type { AuthService } from '../../service/auth-service.js';
import { ErrorSchema } from '../native/schemas.js';
import { defineRoute, type AnyRoute } from '../route.js';

const TeamSchema = z.object({ id: z.string(), name: z.string(), is_admin: z.boolean(), created_at: z.string() }).meta({ id: 'Team' });
const ApiKeySchema = z
  .object({
    id: z.string(),
    team_id: z.string(),
    name: z.string(),
    created_at: z.string(),
    revoked_at: z.string().nullable(),
    user_id: z.string().nullable().describe('The user the key acts as; null for a team key (team admin rights).'),
    key: z.string().optional().describe('The secret: returned once, at creation.'),
  })
  .meta({ id: 'ApiKey' });

const UserSchema = z
  .object({
    id: z.string(),
    team_id: z.string(),
    email: z.string(),
    first_name: z.string().nullable(),
    last_name: z.string().nullable(),
    role: z.enum(USER_ROLES).describe('admin: every machine of the team; member: the machines it created or is an accessor of.'),
    created_at: z.string(),
  })
  .meta({ id: 'User' });

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
});

const adminErrors = {
  400: { description: 'Invalid request.', schema: ErrorSchema },
  401: { description: 'Missing or unknown API key.', schema: ErrorSchema },
  403: { description: 'Not an admin key.', schema: ErrorSchema },
  404: { description: 'No such team, user or key.', schema: ErrorSchema },
};

/** Admin endpoints: teams and their API keys. */
export function adminRoutes(auth: AuthService, now: () => number): AnyRoute[] {
  const TeamParams = z.object({ id: z.string().min(1).max(128) });
  return [
    defineRoute({
      method: 'POST',
      url: '/v1/admin/teams',
      operationId: 'createTeam',
      summary: 'Create a team',
      tag: 'admin',
      auth: 'admin',
      body: z.strictObject({ name: z.string().min(1).max(128) }),
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
      responses: { 200: { description: 'All teams.', schema: z.object({ items: z.array(TeamSchema) }) }, ...adminErrors },
      handler: async () => ({ items: (await auth.listTeams()).map(teamView) }),
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
      body: z.strictObject({ name: z.string().min(1).max(128).optional() }),
      status: 201,
      responses: { 201: { description: 'The key, with its secret.', schema: ApiKeySchema }, ...adminErrors },
      handler: async ({ params, body }) => {
        const issued = await auth.issueKey(params.id, body.name ?? 'api key', now());
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
      responses: { 200: { description: 'The keys.', schema: z.object({ items: z.array(ApiKeySchema) }) }, ...adminErrors },
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
      body: z.strictObject({
        email: z.email().max(254),
        first_name: z.string().trim().min(1).max(128).nullable().optional(),
        last_name: z.string().trim().min(1).max(128).nullable().optional(),
        role: z.enum(USER_ROLES).optional().describe('@default "member"'),
      }),
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
      responses: { 200: { description: 'The users, oldest first.', schema: z.object({ items: z.array(UserSchema) }) }, ...adminErrors },
      handler: async ({ params }) => ({ items: (await auth.listUsers(params.id)).map(userView) }),
    }),
    defineRoute({
      method: 'GET',
      url: '/v1/admin/users/:id',
      operationId: 'getUser',
      summary: 'Get a user',
      tag: 'admin',
      auth: 'admin',
      params: z.object({ id: z.string().min(1).max(128) }),
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
      params: z.object({ id: z.string().min(1).max(128) }),
      body: z.strictObject({ name: z.string().min(1).max(128).optional() }),
      status: 201,
      responses: { 201: { description: 'The key, with its secret.', schema: ApiKeySchema }, ...adminErrors },
      handler: async ({ params, body }) => {
        const issued = await auth.issueUserKey(params.id, body.name ?? 'user key', now());
        return { ...keyView(issued.record), key: issued.secret };
      },
    }),
    defineRoute({
      method: 'DELETE',
      url: '/v1/admin/keys/:id',
      operationId: 'revokeApiKey',
      summary: 'Revoke an API key',
      tag: 'admin',
      auth: 'admin',
      params: z.object({ id: z.string().min(1).max(128) }),
      status: 204,
      responses: { 204: { description: 'Revoked.' }, ...adminErrors },
      handler: async ({ params }) => {
        await auth.revokeKey(params.id, now());
      },
    }),
  ];
}
