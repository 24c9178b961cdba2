/**
 * The committed OpenAPI document against the seeds, field by field: which fields are
 * required, and the formats the seeds give (date-time, int64, uuid). The tables below are
 * transcribed from the seed pages (docs/native-api.md names them); `machines-api.test.ts`
 * checks that the committed document is the one the code serves.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { MACHINE_EVENT_MEANINGS, MACHINE_EVENT_NAMES } from '../domain/machine-event.js';

type Schema = { type?: string | string[]; format?: string; anyOf?: Schema[]; properties?: Record<string, Schema>; required?: string[]; items?: Schema; enum?: unknown[] };

const doc = JSON.parse(await readFile(fileURLToPath(new URL('../../../docs/openapi.json', import.meta.url)), 'utf8')) as { components: { schemas: Record<string, Schema> } };
const component = (name: string): Schema => {
  const s = doc.components.schemas[name];
  assert.ok(s, `component ${name} exists`);
  return s;
};

/** The schema itself, or its non-null branch when it is nullable. */
const nonNull = (s: Schema): Schema => s.anyOf?.find((b) => b.type !== 'null') ?? s;
const nullable = (s: Schema): boolean => (s.anyOf ?? []).some((b) => b.type === 'null') || (Array.isArray(s.type) && s.type.includes('null'));

/** Seeds 000 and 001 (the machine object): name → [format or '', required]. */
const SEED_MACHINE: Record<string, [string, boolean]> = {
  id: ['', true],
  status: ['', true],
  config: ['', true],
  template: ['', true],
  created_at: ['date-time', true],
  metadata: ['', false],
  started_at: ['date-time', false],
  timeout_ms: ['int64', false],
  timeout_at: ['date-time', false],
  expires_at: ['date-time', false],
  remaining_ms: ['int64', false],
  timeout_action: ['', false],
  last_active_at: ['date-time', false],
  inactivity_timeout_ms: ['int64', false],
  auto_delete_after_ms: ['int64', false],
  ephemeral: ['', false],
  cwd: ['', false],
  snapshot_id: ['', false],
  warm_pool_checkout: ['', false],
};

/** Seed 003 (the legacy sandbox view). */
const SEED_SANDBOX = ['id', 'status', 'config', 'template', 'created_at', 'metadata', 'started_at', 'timeout_ms', 'timeout_at', 'expires_at', 'timeout_action', 'cwd', 'snapshot_id', 'warm_pool_checkout'];

/** Seed 002: the fields with a format, per object (nested ones as a.b). */
const SEED_PAPERSPACE_FORMATS: Record<string, Record<string, string>> = {
  PaperspaceMachine: { dtCreated: 'date-time', dtDeleted: 'date-time', dtModified: 'date-time', ram: 'int64', storageTotal: 'int64', storageUsed: 'int64', 'reservation.dtFinished': 'date-time', 'reservation.dtStarted': 'date-time', 'reservation.id': 'uuid' },
  PaperspaceMachineEvent: { dtCreated: 'date-time', dtFinished: 'date-time', dtStarted: 'date-time' },
};

/** Seed 002: the fields it marks optional (every other field of these objects is required). */
const SEED_PAPERSPACE_OPTIONAL: Record<string, string[]> = {
  PaperspaceMachine: ['accelerators'],
  PaperspaceMachineEvent: [],
};

/** Seed 002: enums as it lists them. */
const SEED_PAPERSPACE_ENUMS: Record<string, Record<string, string[]>> = {
  PaperspaceMachine: { autoSnapshotFrequency: ['hourly', 'daily', 'weekly', 'monthly'], publicIpType: ['static', 'dynamic', 'none'], restorePointFrequency: ['shutdown'] },
  PaperspaceMachineEvent: { state: ['new', 'in progress', 'done', 'error', 'cancelled'] },
};

function property(s: Schema, path: string): Schema {
  let at = s;
  for (const part of path.split('.')) {
    const next = nonNull(at).properties?.[part];
    assert.ok(next, `${path} is a property`);
    at = next;
  }
  return at;
}

describe('docs/openapi.json as the seeds give it', () => {
  it('the native machine: required fields exactly as seeds 000/001, and their formats', () => {
    const m = component('Machine');
    assert.deepEqual(new Set(m.required), new Set(Object.entries(SEED_MACHINE).filter(([, [, req]]) => req).map(([n]) => n)));
    for (const [name, [format]] of Object.entries(SEED_MACHINE)) {
      const p = property(m, name);
      assert.equal(nonNull(p).format, format || undefined, `Machine.${name} format`);
    }
    assert.deepEqual(nonNull(property(m, 'status')).enum, ['creating', 'running', 'paused', 'destroyed', 'error']);
    assert.deepEqual(nonNull(property(m, 'timeout_action')).enum, ['destroy', 'hibernate']);
    assert.ok(nullable(property(m, 'last_active_at')) && nullable(property(m, 'inactivity_timeout_ms')) && nullable(property(m, 'auto_delete_after_ms')));
  });

  it('the sandbox view: seed 003\'s fields, the same required ones', () => {
    const s = component('Sandbox');
    for (const name of SEED_SANDBOX) assert.equal(nonNull(property(s, name)).format, SEED_MACHINE[name]![0] || undefined, `Sandbox.${name}`);
    assert.deepEqual(new Set(s.required), new Set(['id', 'status', 'config', 'template', 'created_at']));
  });

  it('the Paperspace machine and event: formats, required fields and enums as seed 002', () => {
    for (const [comp, formats] of Object.entries(SEED_PAPERSPACE_FORMATS)) {
      const s = component(comp);
      for (const [path, format] of Object.entries(formats)) assert.equal(nonNull(property(s, path)).format, format, `${comp}.${path}`);
      const optional = SEED_PAPERSPACE_OPTIONAL[comp]!;
      assert.deepEqual(new Set(s.required), new Set(Object.keys(s.properties ?? {}).filter((k) => !optional.includes(k))), `${comp} required`);
      for (const [name, values] of Object.entries(SEED_PAPERSPACE_ENUMS[comp]!)) assert.deepEqual(nonNull(property(s, name)).enum, values, `${comp}.${name}`);
    }
  });

  it('every timestamp Hangar adds is a date-time too', () => {
    const stamps: string[] = [];
    const walk = (s: Schema, at: string): void => {
      for (const [k, v] of Object.entries(nonNull(s).properties ?? {})) {
        if (/(_at|^dt[A-Z].*|^mtime|^created)$/.test(k) && nonNull(v).type === 'string') stamps.push(`${at}.${k}=${nonNull(v).format}`);
        walk(v, `${at}.${k}`);
        if (nonNull(v).items) walk(nonNull(v).items!, `${at}.${k}[]`);
      }
    };
    for (const [name, s] of Object.entries(doc.components.schemas)) walk(s, name);
    assert.ok(stamps.length > 20, stamps.join(' '));
    assert.deepEqual(stamps.filter((x) => !x.endsWith('=date-time')), []);
  });

  it('every machine-event name is in the document and in docs/paperspace-api.md, with what it records', async () => {
    assert.deepEqual(nonNull(property(component('PaperspaceMachineEvent'), 'name')).enum, [...MACHINE_EVENT_NAMES]);
    const page = await readFile(fileURLToPath(new URL('../../../docs/paperspace-api.md', import.meta.url)), 'utf8');
    for (const name of MACHINE_EVENT_NAMES) assert.ok(page.includes(`| \`${name}\` | ${MACHINE_EVENT_MEANINGS[name]} |`), `docs/paperspace-api.md lists ${name}`);
  });
});
