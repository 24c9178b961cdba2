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
}

/** Who is calling: resolved from the bearer token at the edge. */
export interface Caller {
  team: Team;
  keyId: string;
}
