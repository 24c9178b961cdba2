import type Database from 'better-sqlite3';
import type { MachineRecord } from '../../domain/machine.js';
import type { MachinePageOrder, MachinePageQuery, MachineSize, ValueFilter } from '../store.js';
import { VISIBLE_MACHINE } from './access.js';
import { machineFromRow, type MachineRow } from './machine-rows.js';

/**
 * A string as a BLOB whose byte order is JavaScript's string order: UTF-16 big-endian.
 * SQLite's own text order is UTF-8 byte order (code points), which differs from JavaScript
 * for characters above U+FFFF against those from U+E000 up ('😀' < 'Ａ' in UTF-8, not in JS).
 */
function utf16Order(s: string): Buffer {
  return Buffer.from(s, 'utf16le').swap16();
}

/** SQL and its arguments, in the order the placeholders appear. */
interface Fragment {
  sql: string;
  args: unknown[];
}

const placeholders = (n: number): string => Array.from({ length: n }, () => '?').join(', ');

function isEmptyOneOf<T>(f: ValueFilter<T> | undefined): boolean {
  return f !== undefined && 'oneOf' in f && f.oneOf.length === 0;
}

function templateFilter(f: ValueFilter<string>): Fragment | null {
  const [op, values] = 'oneOf' in f ? ['IN', f.oneOf] : ['NOT IN', f.noneOf];
  if (values.length === 0) return null;
  return { sql: `template ${op} (${placeholders(values.length)})`, args: [...values] };
}

function sizeFilter(f: ValueFilter<MachineSize>): Fragment | null {
  const [negate, sizes] = 'oneOf' in f ? [false, f.oneOf] : [true, f.noneOf];
  if (sizes.length === 0) return null;
  // IS, not =: a config without the field is simply not that size, never NULL.
  const one = "(json_extract(config, '$.vcpus') IS ? AND json_extract(config, '$.memory_mb') IS ?)";
  const any = `(${sizes.map(() => one).join(' OR ')})`;
  return { sql: negate ? `NOT ${any}` : any, args: sizes.flatMap((s) => [s.vcpus, s.memory_mb]) };
}

/** The sort key of each row, and the CTE it needs (label rules). */
function sortKey(order: MachinePageOrder): { with: Fragment | null; key: Fragment; text: boolean } {
  switch (order.by) {
    case 'createdAt':
      return { with: null, key: { sql: 'created_at', args: [] }, text: false };
    case 'displayName':
      return { with: null, key: { sql: 'utf16_order(coalesce(name, id))', args: [] }, text: true };
    case 'label': {
      // A tagged machine's tag comes from a JSON object bound once, whatever the number of tags.
      const tag = '(SELECT value FROM json_each(?) WHERE key = machines.id)';
      const label = `(SELECT label FROM labels WHERE labels.status = machines.status AND labels.tag IS ${tag} ORDER BY n LIMIT 1)`;
      const rules = order.rules.length === 0 ? null : order.rules;
      return {
        with: rules && {
          sql: `WITH labels(n, status, tag, label) AS (VALUES ${rules.map(() => '(?, ?, ?, ?)').join(', ')}) `,
          args: rules.flatMap((r, i) => [i, r.status, r.tag, r.label]),
        },
        key: rules
          ? { sql: `utf16_order(coalesce(${label}, ''))`, args: [JSON.stringify(Object.fromEntries(order.tags))] }
          : { sql: "utf16_order('')", args: [] },
        text: true,
      };
    }
  }
}

/** The Paperspace-style machine page: filters, any of three orders and keyset paging, all in one query. */
export class MachinePages {
  constructor(private readonly db: Database.Database) {
    db.function('utf16_order', { deterministic: true }, (s: unknown) => (typeof s === 'string' ? utf16Order(s) : s));
  }

  /** The rows of one page, in order (see `MachineStore.pageMachines`). */
  page(q: MachinePageQuery): MachineRecord[] {
    if (q.statuses.length === 0 || q.limit <= 0 || isEmptyOneOf(q.templates) || isEmptyOneOf(q.sizes)) return [];
    const where: Fragment[] = [
      { sql: 'team_id = ?', args: [q.teamId] },
      { sql: `status IN (${placeholders(q.statuses.length)})`, args: [...q.statuses] },
    ];
    if (q.displayName !== undefined) where.push({ sql: 'coalesce(name, id) = ?', args: [q.displayName] });
    const templates = q.templates && templateFilter(q.templates);
    if (templates) where.push(templates);
    const sizes = q.sizes && sizeFilter(q.sizes);
    if (sizes) where.push(sizes);
    if (q.visibleTo !== undefined) where.push({ sql: VISIBLE_MACHINE, args: [q.visibleTo, q.visibleTo] });
    if (q.region !== undefined) where.push({ sql: q.region.orDefault ? '(region = ? OR region IS NULL)' : 'region = ?', args: [q.region.name] });

    const { with: cte, key, text } = sortKey(q.order);
    const cmp = q.direction === 'asc' ? '>' : '<';
    const dir = q.direction === 'asc' ? 'ASC' : 'DESC';
    const at = text ? 'utf16_order(?)' : '?';
    const after: Fragment | null = q.after
      ? { sql: `WHERE sort_key ${cmp} ${at} OR (sort_key = ${at} AND id ${cmp} ?)`, args: [q.after.key, q.after.key, q.after.id] }
      : null;
    const sql =
      (cte?.sql ?? '') +
      `SELECT * FROM (SELECT *, ${key.sql} AS sort_key FROM machines WHERE ${where.map((w) => w.sql).join(' AND ')}) AS page ` +
      `${after?.sql ?? ''} ORDER BY sort_key ${dir}, id ${dir} LIMIT ?`;
    const args = [...(cte?.args ?? []), ...key.args, ...where.flatMap((w) => w.args), ...(after?.args ?? []), q.limit];
    return this.db.prepare<unknown[], MachineRow>(sql).all(...args).map(machineFromRow);
  }
}
