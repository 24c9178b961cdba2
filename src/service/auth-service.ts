import { HangarError, validationError } from '../domain/errors.js';
import { newKeyId, newTeamId, newUserId } from '../domain/ids.js';
import type { ApiKeyRecord, Caller, KeyRateLimit, Team, User, UserRole } from '../domain/team.js';
import type { Store } from '../store/store.js';
import { hashApiKey, newApiKeySecret, safeEqual } from './secrets.js';
import { RateLimiter } from './rate-limiter.js';

/** What creating a user takes (validated at the edge). */
export interface NewUserInput {
  email: string;
  firstName?: string | null;
  lastName?: string | null;
  role?: UserRole;
}

/** A key as shown once, at creation: the only time its secret is visible. */
export interface IssuedKey {
  record: ApiKeyRecord;
  secret: string;
}

const ADMIN_TEAM_ID = 'team_admin';

/** Teams, API keys and resolving a bearer token to its caller. */
/** How a new key is narrowed (all optional: a full key that never expires). */
export interface KeyOptions {
  readOnly?: boolean;
  /** The one machine it reaches (of its team). */
  machineId?: string | null;
  /** When it stops working (ms since the epoch). */
  expiresAt?: number | null;
  /** Its own request rate; null: the server's default. */
  rateLimit?: KeyRateLimit | null;
}

export class AuthService {
  private readonly limiter = new RateLimiter();

  constructor(
    private readonly store: Store,
    /** Requests per API key by default (admin keys aside); null: unlimited. A key's own limit applies whatever this is. */
    private readonly defaultRate: KeyRateLimit | null = null,
  ) {}

  /**
   * Make sure an admin can get in: the bootstrap key if configured, else a
   * generated admin key on the very first start. Returns a newly generated secret,
   * if one was generated, so the caller can print it once.
   */
  async bootstrap(bootstrapKey: string | undefined, now: number): Promise<string | null> {
    // Servers sharing one store may start at once (API servers of a fleet): each insert
    // that loses to another's is fine once the row it wanted is there.
    const admin: Team = (await this.store.getTeam(ADMIN_TEAM_ID)) ?? { id: ADMIN_TEAM_ID, name: 'admin', isAdmin: true, createdAt: now };
    await this.unlessThere(() => this.store.insertTeam(admin), async () => (await this.store.getTeam(ADMIN_TEAM_ID)) !== null);
    if (bootstrapKey !== undefined) {
      const hash = hashApiKey(bootstrapKey);
      const there = async (): Promise<boolean> => (await this.store.findApiKeyByHash(hash)) !== null;
      await this.unlessThere(
        () => this.store.insertApiKey({ id: newKeyId(), teamId: admin.id, name: 'bootstrap', hash, createdAt: now, revokedAt: null, userId: null, readOnly: false, machineId: null, expiresAt: null, rateLimit: null }),
        there,
      );
      return null;
    }
    if ((await this.store.countApiKeys()) > 0) return null;
    const issued = await this.issueKey(admin.id, 'first-start admin key', now);
    return issued.secret;
  }

  /** Insert unless `there` says the row is present; an insert that failed because another server's came first is fine. */
  private async unlessThere(insert: () => Promise<void>, there: () => Promise<boolean>): Promise<void> {
    if (await there()) return;
    try {
      await insert();
    } catch (err) {
      if (!(await there())) throw err;
    }
  }

  /**
   * The team an `Authorization` header's key belongs to, or null: for routing only (which
   * host holds a team's template), never for access, which `authenticate` decides where the
   * request is answered. No rate-limit token is taken.
   */
  async teamOfKey(header: string | undefined): Promise<string | null> {
    const m = header === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!m) return null;
    return (await this.store.findApiKeyByHash(hashApiKey(m[1]!)))?.teamId ?? null;
  }

  /** Resolve an `Authorization` header value, or throw UNAUTHORIZED. */
  async authenticate(header: string | undefined): Promise<Caller> {
    const m = header === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!m) {
      throw new HangarError('UNAUTHORIZED', 'Send your API key as "Authorization: Bearer <key>".');
    }
    const token = m[1]!;
    const hash = hashApiKey(token);
    const key = await this.store.findApiKeyByHash(hash);
    // The lookup is by hash; the final comparison is constant-time all the same.
    if (!key || key.revokedAt !== null || !safeEqual(key.hash, hash)) {
      throw new HangarError('UNAUTHORIZED', 'The API key is unknown or revoked. Ask an admin for a valid key.');
    }
    if (key.expiresAt !== null && key.expiresAt <= Date.now()) {
      throw new HangarError('UNAUTHORIZED', 'The API key has expired (it was rotated, or issued with an expiry); use its replacement, or ask an admin for a new key.');
    }
    const team = await this.store.getTeam(key.teamId);
    if (!team) throw new HangarError('UNAUTHORIZED', 'The API key belongs to no team. Ask an admin for a valid key.');
    const user = key.userId === null ? null : await this.store.getUser(key.userId);
    if (key.userId !== null && (!user || user.teamId !== team.id)) {
      throw new HangarError('UNAUTHORIZED', 'The API key belongs to no user of its team. Ask an admin for a valid key.');
    }
    const limit = key.rateLimit ?? (team.isAdmin ? null : this.defaultRate);
    const waitMs = limit === null ? 0 : this.limiter.take(key.id, limit);
    if (waitMs > 0) {
      const seconds = Math.ceil(waitMs / 1000);
      throw new HangarError('RATE_LIMITED', `This API key sent more requests than its rate limit allows; retry in ${seconds} s (Retry-After).`, { retry_after_s: seconds });
    }
    return { team, keyId: key.id, user, scope: { readOnly: key.readOnly, machineId: key.machineId } };
  }

  /** Create a team. */
  async createTeam(name: string, now: number): Promise<Team> {
    const team: Team = { id: newTeamId(), name, isAdmin: false, createdAt: now };
    await this.store.insertTeam(team);
    return team;
  }

  /** All teams. */
  listTeams(): Promise<Team[]> {
    return this.store.listTeams();
  }

  /** A team by id, or NOT_FOUND. */
  async getTeam(id: string): Promise<Team> {
    const team = await this.store.getTeam(id);
    if (!team) throw new HangarError('NOT_FOUND', `Team ${id} does not exist.`);
    return team;
  }

  /** Add a user to a team; emails are unique within a team (compared lower-cased). */
  async createUser(teamId: string, input: NewUserInput, now: number): Promise<User> {
    await this.getTeam(teamId);
    const email = input.email.toLowerCase();
    if (await this.store.findUserByEmail(teamId, email)) {
      throw validationError([{ field: 'email', message: `team ${teamId} already has a user with email ${email}; use that user or another email` }]);
    }
    const user: User = {
      id: newUserId(),
      teamId,
      email,
      firstName: input.firstName ?? null,
      lastName: input.lastName ?? null,
      role: input.role ?? 'member',
      createdAt: now,
    };
    await this.store.insertUser(user);
    return user;
  }

  /** A team's users. */
  async listUsers(teamId: string): Promise<User[]> {
    await this.getTeam(teamId);
    return this.store.listUsers(teamId);
  }

  /** A user by id, or NOT_FOUND. */
  async getUser(id: string): Promise<User> {
    const user = await this.store.getUser(id);
    if (!user) throw new HangarError('NOT_FOUND', `User ${id} does not exist.`);
    return user;
  }

  /** Issue a key that acts as this user (its team, its role, its machines), narrowed by `options`. */
  async issueUserKey(userId: string, name: string, now: number, options: KeyOptions = {}): Promise<IssuedKey> {
    const user = await this.getUser(userId);
    return this.issue(user.teamId, name, now, user.id, options);
  }

  /** Issue a new team key, narrowed by `options`; the secret is returned once and stored hashed. */
  async issueKey(teamId: string, name: string, now: number, options: KeyOptions = {}): Promise<IssuedKey> {
    await this.getTeam(teamId);
    return this.issue(teamId, name, now, null, options);
  }

  private async issue(teamId: string, name: string, now: number, userId: string | null, options: KeyOptions): Promise<IssuedKey> {
    const machineId = options.machineId ?? null;
    if (machineId !== null) {
      const m = await this.store.getMachine(machineId);
      if (!m || m.teamId !== teamId || m.status === 'destroyed') {
        throw validationError([{ field: 'machine_id', message: `no live machine ${machineId} in team ${teamId}; name one of the team's machines` }]);
      }
    }
    const secret = newApiKeySecret();
    const record: ApiKeyRecord = {
      id: newKeyId(), teamId, name, hash: hashApiKey(secret), createdAt: now, revokedAt: null, userId,
      readOnly: options.readOnly ?? false, machineId, expiresAt: options.expiresAt ?? null, rateLimit: options.rateLimit ?? null,
    };
    await this.store.insertApiKey(record);
    return { record, secret };
  }

  /**
   * Rotate a key: a new key with the same team, user, name and scope, while the old one
   * keeps working for `overlapMs` more (never longer than it would have). NOT_FOUND for an
   * unknown, revoked or expired key.
   */
  async rotateKey(id: string, overlapMs: number, now: number): Promise<{ issued: IssuedKey; previous: ApiKeyRecord }> {
    const old = await this.store.getApiKey(id);
    if (!old || old.revokedAt !== null || (old.expiresAt !== null && old.expiresAt <= now)) {
      throw new HangarError('NOT_FOUND', `API key ${id} does not exist, or is revoked or expired: there is nothing to rotate.`);
    }
    const issued = await this.issue(old.teamId, old.name, now, old.userId, { readOnly: old.readOnly, machineId: old.machineId, expiresAt: old.expiresAt, rateLimit: old.rateLimit });
    const until = Math.min(now + overlapMs, old.expiresAt ?? Number.MAX_SAFE_INTEGER);
    await this.store.expireApiKey(id, until);
    return { issued, previous: { ...old, expiresAt: until } };
  }

  /** A team's keys (without secrets). */
  async listKeys(teamId: string): Promise<ApiKeyRecord[]> {
    await this.getTeam(teamId);
    return this.store.listApiKeys(teamId);
  }

  /** Revoke a key; NOT_FOUND if it is unknown or already revoked. */
  async revokeKey(id: string, now: number): Promise<void> {
    if (!(await this.store.revokeApiKey(id, now))) throw new HangarError('NOT_FOUND', `API key ${id} does not exist or is already revoked.`);
  }
}
