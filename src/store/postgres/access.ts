import type { Params } from './connection.js';

/**
 * The access narrowing of service/access.ts as SQL: a member lists the machines it
 * created and those it is an active accessor of. Binds the user id once.
 */
export function visibleMachine(params: Params, userId: string): string {
  const user = params.add(userId);
  return `(created_by = ${user} OR id IN (SELECT machine_id FROM machine_accessors WHERE user_id = ${user} AND deleted_at IS NULL))`;
}
