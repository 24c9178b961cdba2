/** Every schema of the admin surface: teams, their users and API keys, and warm pools. */
import { z } from 'zod';
import { USER_ROLES } from '../../domain/team.js';
import { dateTime, MachineConfigSchema } from '../shared/schemas.js';

/** Path of one team, user or API key: its id. */
const idParams = () => z.object({ id: z.string().min(1).max(128) });

// ---- Teams, users, API keys ----

/** A team. */
export const TeamSchema = z.object({ id: z.string(), name: z.string(), is_admin: z.boolean(), created_at: dateTime() }).meta({ id: 'Team' });

/** A key's own request rate: a token bucket. */
export const KeyRateLimitSchema = z
  .strictObject({
    per_second: z.number().min(0.001).max(1_000_000).describe('Requests a second on average.'),
    burst: z.number().int().min(1).max(1_000_000).optional().describe('Requests at once before the rate applies. @default 2 × per_second, at least 1'),
  })
  .meta({ id: 'KeyRateLimit' });

/** An API key, with its secret only in the answer that issues it. */
export const ApiKeySchema = z
  .object({
    id: z.string(),
    team_id: z.string(),
    name: z.string(),
    created_at: dateTime(),
    revoked_at: dateTime().nullable(),
    user_id: z.string().nullable().describe('The user the key acts as; null for a team key (team admin rights).'),
    read_only: z.boolean().describe('Only reads (GET): no create, change, exec, file write or terminal; no E2B API.'),
    machine_id: z.string().nullable().describe("The one machine the key reaches, through that machine's own routes; null: every machine its team or user reaches."),
    expires_at: dateTime().nullable().describe('When the key stops working (a rotation sets it); null: never.'),
    rate_limit: KeyRateLimitSchema.nullable().describe("The key's own request rate; null: the server's default (HANGAR_KEY_RATE_LIMIT)."),
    key: z.string().optional().describe('The secret: returned once, at creation.'),
  })
  .meta({ id: 'ApiKey' });

/** A user of a team. */
export const UserSchema = z
  .object({
    id: z.string(),
    team_id: z.string(),
    email: z.string(),
    first_name: z.string().nullable(),
    last_name: z.string().nullable(),
    role: z.enum(USER_ROLES).describe('admin: every machine of the team; member: the machines it created or is an accessor of.'),
    created_at: dateTime(),
  })
  .meta({ id: 'User' });

/** The answer of GET /v1/admin/teams. */
export const TeamListSchema = z.object({ items: z.array(TeamSchema) });
/** The answer of GET /v1/admin/teams/{id}/keys. */
export const ApiKeyListSchema = z.object({ items: z.array(ApiKeySchema) });
/** The answer of GET /v1/admin/teams/{id}/users. */
export const UserListSchema = z.object({ items: z.array(UserSchema) });

/** Path of one team. */
export const TeamParams = idParams();
/** Path of one user. */
export const UserParams = idParams();
/** Path of one API key. */
export const ApiKeyParams = idParams();

/** Body of POST /v1/admin/teams. */
export const CreateTeamBody = z.strictObject({ name: z.string().min(1).max(128) });

/** Body of both key issuing endpoints (a team's key, a user's key). */
export const CreateApiKeyBody = z.strictObject({
  name: z.string().min(1).max(128).optional(),
  read_only: z.boolean().optional().describe('Only reads (GET). @default false'),
  machine_id: z.string().min(1).max(64).optional().describe("One live machine of the key's team: the key reaches that machine's own routes only."),
  expires_in_s: z.number().int().min(1).max(366 * 86_400).optional().describe('Seconds until the key stops working. @default never'),
  rate_limit: KeyRateLimitSchema.optional().describe("The key's own request rate, above or below the server's default; it applies to admin keys too. @default the server's HANGAR_KEY_RATE_LIMIT"),
});

/** Body of a key rotation. */
export const RotateApiKeyBody = z.strictObject({
  overlap_s: z.number().int().min(0).max(30 * 86_400).optional().describe('How long the old key keeps working, in seconds. @default 3600'),
});

/** A rotation's answer: the new key (with its secret) and the old one with its expiry. */
export const RotatedApiKeySchema = z.object({ key: ApiKeySchema, previous: ApiKeySchema }).meta({ id: 'RotatedApiKey' });

/** Body of POST /v1/admin/teams/{id}/users. */
export const CreateUserBody = z.strictObject({
  email: z.email().max(254),
  first_name: z.string().trim().min(1).max(128).nullable().optional(),
  last_name: z.string().trim().min(1).max(128).nullable().optional(),
  role: z.enum(USER_ROLES).optional().describe('@default "member"'),
});

// ---- Warm pools ----

/** A warm pool and its idle machines. */
export const WarmPoolSchema = z
  .object({
    name: z.string(),
    template: z.string(),
    config: MachineConfigSchema,
    size: z.number().int(),
    ready: z.number().int().describe('Idle machines ready for a checkout.'),
    hits: z.number().int().describe('Creates served from the pool.'),
    misses: z.number().int().describe('Creates that matched the pool but found no machine ready.'),
    last_error: z.string().nullable().describe('The last refill failure; null once a refill works.'),
    machines: z.array(z.string()).describe('Ids of the idle machines (admins only see these).'),
    created_at: dateTime(),
    updated_at: dateTime(),
  })
  .meta({ id: 'WarmPool' });

/** The answer of GET /v1/warm-pools. */
export const WarmPoolListSchema = z.object({ items: z.array(WarmPoolSchema) });

/** Path of one warm pool: its name. */
export const WarmPoolParams = z.object({ name: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'must be 1 to 63 lowercase letters, digits, - or _') });

/** Body of PUT /v1/warm-pools/{name}. */
export const PutWarmPoolBody = z.strictObject({
  template: z.string().min(1).max(64),
  config: MachineConfigSchema.partial().strict().optional().describe('Defaults as for create.'),
  size: z.number().int().min(0).max(1000).describe('Idle machines to keep ready.'),
});

/** One host of the fleet (GET /v1/admin/hosts). */
export const HostSchema = z
  .object({
    id: z.string().describe('HANGAR_HOST_ID of the host.'),
    state: z.enum(['up', 'draining', 'stopped', 'down']).describe('up: heartbeating; draining: heartbeating, gets no new machines; stopped: shut down cleanly; down: missed its heartbeats.'),
    url: z.string().nullable().describe('Where other servers forward its machines\' requests.'),
    capacity_machines: z.number().int().describe('Machines placement puts on it at most (HANGAR_HOST_CAPACITY).'),
    machines: z.number().int().describe('Machines it holds now: creating, running or paused, warm pools\' included.'),
    started_at: dateTime(),
    heartbeat_at: dateTime(),
    down_reason: z.string().nullable().describe('Why it was marked down; null otherwise.'),
    snapshot_store: z
      .string()
      .nullable()
      .describe('The identity of the directory it keeps snapshots in (HANGAR_SNAPSHOTS_DIR): hosts with the same one share it, and paused machines move between them.'),
  })
  .meta({ id: 'Host' });

export const HostListSchema = z.object({ items: z.array(HostSchema) });
