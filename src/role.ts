/**
 * What a server process is, from its first argument (`node dist/src/main.js [role]`, or
 * `hangar serve|agent|api`): the environment it runs with, checked before the settings are
 * read. `serve` (the default): one server that is everything, SQLite or PostgreSQL. `agent`:
 * a host of a fleet, which runs machines and registers with the shared PostgreSQL. `api`: an
 * API server of a fleet, which runs no machine (`HANGAR_HOST_CAPACITY=0`) and forwards each
 * request to the host it concerns.
 */
import { SettingsError } from './settings.js';

export const ROLES = ['serve', 'agent', 'api'] as const;
export type Role = (typeof ROLES)[number];

/** The role named by `arg` (undefined: serve), or a SettingsError saying which there are. */
export function roleOf(arg: string | undefined): Role {
  if (arg === undefined) return 'serve';
  if ((ROLES as readonly string[]).includes(arg)) return arg as Role;
  throw new SettingsError(`Unknown role "${arg}": run with one of ${ROLES.join(', ')} (serve, the default, is one server that is everything).`);
}

/** The environment a role runs with: `env` itself, checked, with what the role fixes set. */
export function roleEnv(role: Role, env: Record<string, string | undefined>): Record<string, string | undefined> {
  if (role === 'serve') return env;
  const name = `hangar ${role}`;
  if (!env.HANGAR_DATABASE_URL) {
    throw new SettingsError(`${name} is part of a fleet: set HANGAR_DATABASE_URL to the PostgreSQL database every host and API server shares (one server alone: hangar serve).`);
  }
  if (role === 'api') {
    if (env.HANGAR_HOST_CAPACITY !== undefined && env.HANGAR_HOST_CAPACITY.trim() !== '0') {
      throw new SettingsError(`hangar api runs no machine: unset HANGAR_HOST_CAPACITY (it is 0 for an API server), or run hangar agent for a host.`);
    }
    return { ...env, HANGAR_HOST_CAPACITY: '0' };
  }
  if (env.HANGAR_HOST_CAPACITY !== undefined && env.HANGAR_HOST_CAPACITY.trim() === '0') {
    throw new SettingsError(`hangar agent runs machines: set HANGAR_HOST_CAPACITY to how many this host takes (at least 1), or run hangar api for an API server.`);
  }
  return env;
}
