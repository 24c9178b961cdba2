/** A team owns machines and API keys; machines of other teams are invisible to it. */
export interface Team {
  id: string;
  name: string;
  /** Admin teams may manage teams and keys. */
  isAdmin: boolean;
  createdAt: number;
}

/** A stored API key: only the SHA-256 of the secret is kept. */
export interface ApiKeyRecord {
  id: string;
  teamId: string;
  name: string;
  /** Hex SHA-256 of the bearer token. */
  hash: string;
  createdAt: number;
  revokedAt: number | null;
  /** The user the key belongs to; null for a team key, which acts with a team admin's rights. */
  userId: string | null;
  /** Only reads (GET and HEAD): no create, change, exec, file write or terminal. */
  readOnly: boolean;
  /** The one machine the key reaches (its own routes only); null: every machine the key's team or user reaches. */
  machineId: string | null;
  /** When the key stops working (set by a rotation, or at issue); null: never. */
  expiresAt: number | null;
  /** Its own request rate (admins set it per key); null: the server's HANGAR_KEY_RATE_LIMIT. */
  rateLimit: KeyRateLimit | null;
}

/** A token bucket: `perSecond` requests a second on average, `burst` at once. */
export interface KeyRateLimit {
  perSecond: number;
  burst: number;
}

/** The burst of a rate given without one: twice the rate, at least 1. */
export function defaultBurst(perSecond: number): number {
  return Math.max(1, Math.ceil(2 * perSecond));
}

/** What a key may do beyond its team's and user's rights. */
export interface KeyScope {
  readOnly: boolean;
  machineId: string | null;
}

/** A key's scope: full unless narrowed at issue. */
export const FULL_SCOPE: KeyScope = { readOnly: false, machineId: null };

/**
 * Why a key's scope refuses a request, or null when it may go on. `method` is the HTTP
 * method ('WS' for a terminal or desktop WebSocket, which types into the machine);
 * `machineId` the machine the route is about, null for a route about none.
 */
export function scopeRefusal(scope: KeyScope, method: string, machineId: string | null): string | null {
  if (scope.readOnly && method !== 'GET' && method !== 'HEAD') {
    return 'This API key is read-only: it may only read (GET). Use a key without read_only for this.';
  }
  if (scope.machineId !== null && machineId !== scope.machineId) {
    return `This API key reaches only machine ${scope.machineId}, through that machine's own routes (/v1/machines/${scope.machineId}/…). Use a team or user key for this.`;
  }
  return null;
}

export const USER_ROLES = ['admin', 'member'] as const;
/** A team admin reaches every machine of the team; a member only the ones it created or is an accessor of. */
export type UserRole = (typeof USER_ROLES)[number];

/** A person in a team. Users call with their own API keys. */
export interface User {
  id: string;
  teamId: string;
  /** Stored lower-cased; unique within a team. */
  email: string;
  firstName: string | null;
  lastName: string | null;
  role: UserRole;
  createdAt: number;
}

/** A user granted access to a machine it did not create (a Paperspace-style accessor). */
export interface MachineAccessor {
  machineId: string;
  userId: string;
  createdAt: number;
  /** When the access was removed; null while it holds. */
  deletedAt: number | null;
}

/** Who is calling: resolved from the bearer token at the edge. */
export interface Caller {
  team: Team;
  keyId: string;
  /** The user of a user key; null for a team key. */
  user: User | null;
  /** The key's scope (read-only, one machine), checked at every route. */
  scope: KeyScope;
}

/** True when the caller reaches every machine of its team: a team key, or a team admin's key. */
export function seesWholeTeam(caller: Caller): boolean {
  return caller.user === null || caller.user.role === 'admin';
}
