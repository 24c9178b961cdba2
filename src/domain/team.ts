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
}

/** True when the caller reaches every machine of its team: a team key, or a team admin's key. */
export function seesWholeTeam(caller: Caller): boolean {
  return caller.user === null || caller.user.role === 'admin';
}
