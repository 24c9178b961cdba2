/**
 * The access narrowing of service/access.ts as SQL: a member lists the machines it
 * created and those it is an active accessor of. Binds the user id twice.
 */
export const VISIBLE_MACHINE = '(created_by = ? OR id IN (SELECT machine_id FROM machine_accessors WHERE user_id = ? AND deleted_at IS NULL))';
