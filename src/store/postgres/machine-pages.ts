import type pg from 'pg';
import type { MachineRecord } from '../../domain/machine.js';
import type { MachinePageOrder, MachinePageQuery, MachineSize, ValueFilter } from '../store.js';
import { visibleMachine } from './access.js';
import { Params, rowsOf } from './connection.js';
import { machineFromRow, type MachineRow } from './machine-rows.js';

function isEmptyOneOf<T>(f: ValueFilter<T> | undefined): boolean {
  return f !== undefined && 'oneOf' in f && f.oneOf.length === 0;
}

function templateFilter(p: Params, f: ValueFilter<string>): string | null {
  const [negate, values] = 'oneOf' in f ? [false, f.oneOf] : [true, f.noneOf];
  if (values.length === 0) return null;
  const any = `template = ANY(${p.add(values)}::text[])`;
  return negate ? `NOT ${any}` : any;
}

function sizeFilter(p: Params, f: ValueFilter<MachineSize>): string | null {
  const [negate, sizes] = 'oneOf' in f ? [false, f.oneOf] : [true, f.noneOf];
  if (sizes.length === 0) return null;
  // jsonb equality: numbers compare as numbers, never equal to strings; a config without
  // the field is simply not that size (the row is not in the EXISTS), never NULL.
  const vcpus = p.add(sizes.map((s) => JSON.stringify(s.vcpus)));
  const memory = p.add(sizes.map((s) => JSON.stringify(s.memory_mb)));
  const any =
    `EXISTS (SELECT 1 FROM unnest(${vcpus}::jsonb[], ${memory}::jsonb[]) AS size(vcpus, memory_mb) ` +
    "WHERE config::jsonb -> 'vcpus' = size.vcpus AND config::jsonb -> 'memory_mb' = size.memory_mb)";
  return negate ? `NOT ${any}` : any;
}

/** The sort key of each row (SQL over `machines`), and whether it is text (compared in JavaScript's order). */
function sortKey(p: Params, order: MachinePageOrder): { key: string; text: boolean } {
  switch (order.by) {
    case 'createdAt':
      return { key: 'created_at', text: false };
    case 'displayName':
      return { key: 'hangar_utf16_order(coalesce(name, id))', text: true };
    case 'label': {
      if (order.rules.length === 0) return { key: "hangar_utf16_order('')", text: true };
      // Tags and rules are bound as arrays: the statement is the same whatever their number.
      const tagIds = p.add([...order.tags.keys()]);
      const tagValues = p.add([...order.tags.values()]);
      const tag = `(SELECT t.tag FROM unnest(${tagIds}::text[], ${tagValues}::text[]) AS t(id, tag) WHERE t.id = machines.id)`;
      const statuses = p.add(order.rules.map((r) => r.status));
      const tags = p.add(order.rules.map((r) => r.tag));
      const labels = p.add(order.rules.map((r) => r.label));
      const label =
        `(SELECT r.label FROM unnest(${statuses}::text[], ${tags}::text[], ${labels}::text[]) WITH ORDINALITY AS r(status, tag, label, n) ` +
        `WHERE r.status = machines.status AND r.tag IS NOT DISTINCT FROM ${tag} ORDER BY r.n LIMIT 1)`;
      return { key: `hangar_utf16_order(coalesce(${label}, ''))`, text: true };
    }
  }
}

/** The Paperspace-style machine page: filters, any of three orders and keyset paging, all in one query. */
export class MachinePages {
  constructor(private readonly pool: pg.Pool) {}

  /** The rows of one page, in order (see `MachineStore.pageMachines`). */
  async page(q: MachinePageQuery): Promise<MachineRecord[]> {
    if (q.statuses.length === 0 || q.limit <= 0 || isEmptyOneOf(q.templates) || isEmptyOneOf(q.sizes)) return [];
    const p = new Params();
    const { key, text } = sortKey(p, q.order);
    const where = [`team_id = ${p.add(q.teamId)}`, `status = ANY(${p.add(q.statuses)}::text[])`];
    if (q.displayName !== undefined) where.push(`coalesce(name, id) = ${p.add(q.displayName)}`);
    const templates = q.templates && templateFilter(p, q.templates);
    if (templates) where.push(templates);
    const sizes = q.sizes && sizeFilter(p, q.sizes);
    if (sizes) where.push(sizes);
    if (q.visibleTo !== undefined) where.push(visibleMachine(p, q.visibleTo));
    if (q.region !== undefined) {
      const region = p.add(q.region.name);
      where.push(q.region.orDefault ? `(region = ${region} OR region IS NULL)` : `region = ${region}`);
    }

    const cmp = q.direction === 'asc' ? '>' : '<';
    const dir = q.direction === 'asc' ? 'ASC' : 'DESC';
    // Text keys compare by bytes ("C") of their UTF-16-ordered form: JavaScript's order.
    const sortBy = text ? 'sort_key COLLATE "C"' : 'sort_key';
    let after = '';
    if (q.after) {
      const at = text ? `hangar_utf16_order(${p.add(String(q.after.key))}::text) COLLATE "C"` : `${p.add(q.after.key)}::bigint`;
      const id = p.add(q.after.id);
      after = `WHERE ${sortBy} ${cmp} ${at} OR (${sortBy} = ${at} AND id ${cmp} ${id})`;
    }
    const sql =
      `SELECT * FROM (SELECT *, ${key} AS sort_key FROM machines WHERE ${where.join(' AND ')}) AS page ` +
      `${after} ORDER BY ${sortBy} ${dir}, id ${dir} LIMIT ${p.add(q.limit)}`;
    return (await rowsOf<MachineRow>(this.pool, sql, p.values)).map(machineFromRow);
  }
}
