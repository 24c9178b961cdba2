/**
 * Bad requests against a real server: each one gets its 4xx status, a stable code from
 * the catalogue, a message that says which field is wrong (no stack trace), and leaves
 * every machine exactly as it was.
 */
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { ERROR_CATALOGUE } from '../../domain/errors.js';
import { MACHINE_STATUSES } from '../../domain/machine.js';
import { TestServer, type TestResponse } from '../../testing/harness.js';

/** What the cases need once the server is up. */
interface Ctx {
  keyA: string;
  keyB: string;
  /** A running machine of team A. */
  machineA: string;
  /** A next_token of team A for the default list with limit=1. */
  tokenA: string;
  snapshotsAvailable: boolean;
  /** A real snapshot of team A's machine, when the server takes snapshots. */
  snapshotA?: string;
  /** A volume of team A no machine has. */
  volumeA: string;
  /** A volume of team A attached read-write to `holderA`. */
  heldVolumeA: string;
  /** The machine of team A holding `heldVolumeA`. */
  holderA: string;
}

/** One bad request and the answer it must get. */
interface Case {
  name: string;
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  path: string | ((c: Ctx) => string);
  body?: unknown | (() => unknown);
  rawBody?: string;
  headers?: Record<string, string>;
  /** Whose key sends it. @default 'A' */
  as?: 'A' | 'B';
  status: number;
  code: string | ((c: Ctx) => string);
  /** Substrings (case-insensitive) the message must contain: the field, the limit, the hint. */
  mentions?: string[];
  /** VALIDATION_FAILED: the field details.fields must name. */
  field?: string;
  /** Extra checks of the error body. */
  check?: (body: Record<string, any>, c: Ctx) => void;
  /** Run only when this holds (e.g. a case that is only bad without snapshot support). */
  when?: (c: Ctx) => boolean;
  /** A known bug: the status/code/message checks are a todo test; the no-side-effect checks still run. */
  todo?: string;
}

const ALL_STATES = MACHINE_STATUSES.join(',');
/** Filled in by `before`, read by cases whose body depends on the server. */
const ctxRef = {} as Ctx;
const STACK_TRACE = /\n\s+at |\bat [\w.<>]+ \(|(?:\.ts|\.js):\d+:\d+|node_modules|node:internal/;

const cases: Case[] = [
  // --- body: not JSON, not an object ---
  {
    name: 'invalid JSON body',
    method: 'POST', path: '/v1/machines', rawBody: '{"config": {"vcpus": 2,', headers: { 'content-type': 'application/json' },
    status: 400, code: 'INVALID_JSON', mentions: ['JSON'],
  },
  {
    name: 'JSON array as the body',
    method: 'POST', path: '/v1/machines', body: [{ template: 'base' }],
    status: 400, code: 'VALIDATION_FAILED', mentions: ['body', 'object'],
  },
  {
    name: 'text/plain body',
    method: 'POST', path: '/v1/machines', rawBody: '{}', headers: { 'content-type': 'text/plain' },
    status: 415, code: 'UNSUPPORTED_MEDIA_TYPE', mentions: ['application/json'],
  },
  {
    name: 'application/xml body',
    method: 'POST', path: '/v1/machines', rawBody: '<machine/>', headers: { 'content-type': 'application/xml' },
    status: 415, code: 'UNSUPPORTED_MEDIA_TYPE', mentions: ['application/json'],
  },
  {
    name: 'body larger than 1 MiB',
    method: 'POST', path: '/v1/machines', rawBody: JSON.stringify({ metadata: { blob: 'x'.repeat(1_100_000) } }), headers: { 'content-type': 'application/json' },
    status: 413, code: 'BODY_TOO_LARGE', mentions: ['1 MiB'],
  },

  // --- create: wrong types ---
  {
    name: 'config.vcpus as a string',
    method: 'POST', path: '/v1/machines', body: { config: { vcpus: '2' } },
    status: 400, code: 'VALIDATION_FAILED', field: 'config.vcpus', mentions: ['config.vcpus', 'integer'],
  },
  {
    name: 'ephemeral as "yes"',
    method: 'POST', path: '/v1/machines', body: { ephemeral: 'yes' },
    status: 400, code: 'VALIDATION_FAILED', field: 'ephemeral', mentions: ['ephemeral', 'true or false'],
  },
  {
    name: 'metadata as an array',
    method: 'POST', path: '/v1/machines', body: { metadata: [1] },
    status: 400, code: 'VALIDATION_FAILED', field: 'metadata', mentions: ['metadata', 'object'],
  },
  {
    name: 'env value as a number',
    method: 'POST', path: '/v1/machines', body: { env: { A: 1 } },
    status: 400, code: 'VALIDATION_FAILED', field: 'env.A', mentions: ['env.A', 'string'],
  },
  {
    name: 'env key that is not a variable name',
    method: 'POST', path: '/v1/machines', body: { env: { '1BAD': 'x' } },
    status: 400, code: 'VALIDATION_FAILED', field: 'env.1BAD', mentions: ['env.1BAD', 'environment variable'],
  },

  // --- create: unknown fields ---
  {
    name: 'unknown top-level field',
    method: 'POST', path: '/v1/machines', body: { gpu: true },
    status: 400, code: 'VALIDATION_FAILED', field: 'gpu', mentions: ['gpu', 'unknown field', 'accepted', 'template', 'timeout_ms', 'metadata'],
  },
  {
    name: 'unknown config field',
    method: 'POST', path: '/v1/machines', body: { config: { vcpus: 1, gpus: 1 } },
    status: 400, code: 'VALIDATION_FAILED', field: 'config.gpus', mentions: ['config.gpus', 'accepted', 'vcpus', 'memory_mb', 'disk_mb'],
  },

  // --- create: out of range ---
  {
    name: 'config.vcpus 0',
    method: 'POST', path: '/v1/machines', body: { config: { vcpus: 0 } },
    status: 400, code: 'VALIDATION_FAILED', field: 'config.vcpus', mentions: ['config.vcpus', 'at least 1'],
  },
  {
    name: 'config.vcpus 65',
    method: 'POST', path: '/v1/machines', body: { config: { vcpus: 65 } },
    status: 400, code: 'VALIDATION_FAILED', field: 'config.vcpus', mentions: ['config.vcpus', 'at most 64'],
  },
  {
    name: 'config.memory_mb 1',
    method: 'POST', path: '/v1/machines', body: { config: { memory_mb: 1 } },
    status: 400, code: 'VALIDATION_FAILED', field: 'config.memory_mb', mentions: ['config.memory_mb', 'at least 16'],
  },
  {
    name: 'config.disk_mb 0',
    method: 'POST', path: '/v1/machines', body: { config: { disk_mb: 0 } },
    status: 400, code: 'VALIDATION_FAILED', field: 'config.disk_mb', mentions: ['config.disk_mb', 'at least 16'],
  },
  {
    name: 'timeout_ms 0',
    method: 'POST', path: '/v1/machines', body: { timeout_ms: 0 },
    status: 400, code: 'VALIDATION_FAILED', field: 'timeout_ms', mentions: ['timeout_ms', 'at least 1000'],
  },
  {
    name: 'timeout_ms 999',
    method: 'POST', path: '/v1/machines', body: { timeout_ms: 999 },
    status: 400, code: 'VALIDATION_FAILED', field: 'timeout_ms', mentions: ['timeout_ms', 'at least 1000'],
  },
  {
    name: 'timeout_ms huge',
    method: 'POST', path: '/v1/machines', body: { timeout_ms: 1e20 },
    status: 400, code: 'VALIDATION_FAILED', field: 'timeout_ms', mentions: ['timeout_ms', 'at most 2592000000'],
  },
  {
    name: 'timeout_ms not an integer',
    method: 'POST', path: '/v1/machines', body: { timeout_ms: 1500.5 },
    status: 400, code: 'VALIDATION_FAILED', field: 'timeout_ms', mentions: ['timeout_ms', 'integer'],
  },
  {
    name: 'negative auto_delete_after_ms',
    method: 'POST', path: '/v1/machines', body: { auto_delete_after_ms: -1 },
    status: 400, code: 'VALIDATION_FAILED', field: 'auto_delete_after_ms', mentions: ['auto_delete_after_ms', 'at least 0'],
  },
  {
    name: 'timeout_action "explode"',
    method: 'POST', path: '/v1/machines', body: { timeout_action: 'explode' },
    status: 400, code: 'VALIDATION_FAILED', field: 'timeout_action', mentions: ['timeout_action', 'destroy', 'hibernate'],
  },
  {
    name: 'relative cwd',
    method: 'POST', path: '/v1/machines', body: { cwd: 'tmp/work' },
    status: 400, code: 'VALIDATION_FAILED', field: 'cwd', mentions: ['cwd', 'absolute'],
  },
  {
    name: 'metadata larger than 16 KiB',
    method: 'POST', path: '/v1/machines', body: { metadata: { blob: 'x'.repeat(16 * 1024) } },
    status: 400, code: 'VALIDATION_FAILED', field: 'metadata', mentions: ['metadata', '16384'],
  },
  {
    name: 'Idempotency-Key longer than 255 characters',
    method: 'POST', path: '/v1/machines', body: {}, headers: { 'idempotency-key': 'k'.repeat(256) },
    status: 400, code: 'VALIDATION_FAILED', field: 'header.Idempotency-Key', mentions: ['Idempotency-Key', '255'],
  },

  // --- create: well-formed but impossible ---
  {
    name: 'unknown template',
    method: 'POST', path: '/v1/machines', body: { template: 'nope' },
    status: 422, code: 'UNKNOWN_TEMPLATE', mentions: ['nope', 'base'],
    check: (b) => {
      assert.equal(b.details?.template, 'nope');
      assert.ok(Array.isArray(b.details?.available) && b.details.available.includes('base'), 'details.available lists the templates');
    },
  },
  {
    name: 'timeout_action hibernate on a server without snapshots',
    when: (c) => !c.snapshotsAvailable,
    method: 'POST', path: '/v1/machines', body: { timeout_action: 'hibernate' },
    status: 422, code: 'UNSUPPORTED_OPERATION', mentions: ['hibernate'],
  },
  {
    name: 'inactivity_timeout_ms without ephemeral on a server without snapshots',
    when: (c) => !c.snapshotsAvailable,
    method: 'POST', path: '/v1/machines', body: { inactivity_timeout_ms: 60_000 },
    status: 422, code: 'UNSUPPORTED_OPERATION', mentions: ['ephemeral'],
  },
  {
    name: 'snapshot_id that does not exist',
    method: 'POST', path: '/v1/machines', body: { snapshot_id: 'snap_doesnotexist0000' },
    status: 422, code: (c) => (c.snapshotsAvailable ? 'UNKNOWN_SNAPSHOT' : 'UNSUPPORTED_OPERATION'), mentions: ['snap'],
  },
  {
    name: 'snapshot_id of another team',
    when: (c) => c.snapshotA !== undefined,
    as: 'B',
    method: 'POST', path: '/v1/machines', body: () => ({ snapshot_id: ctxRef.snapshotA }),
    status: 422, code: 'UNKNOWN_SNAPSHOT', mentions: ['does not exist'],
  },
  // --- create: volumes ---
  {
    name: 'volumes as an object',
    method: 'POST', path: '/v1/machines', body: { volumes: { volume_id: 'vol_x' } },
    status: 400, code: 'VALIDATION_FAILED', field: 'volumes', mentions: ['volumes', 'array'],
  },
  {
    name: 'volumes: an attachment without volume_id',
    method: 'POST', path: '/v1/machines', body: { volumes: [{ mount_path: '/data' }] },
    status: 400, code: 'VALIDATION_FAILED', field: 'volumes.0.volume_id', mentions: ['volumes.0.volume_id'],
  },
  {
    name: 'volumes: an attachment without mount_path',
    method: 'POST', path: '/v1/machines', body: () => ({ volumes: [{ volume_id: ctxRef.volumeA }] }),
    status: 400, code: 'VALIDATION_FAILED', field: 'volumes.0.mount_path', mentions: ['volumes.0.mount_path'],
  },
  {
    name: 'volumes: unknown field in an attachment',
    method: 'POST', path: '/v1/machines', body: () => ({ volumes: [{ volume_id: ctxRef.volumeA, mount_path: '/data', size_mb: 5 }] }),
    status: 400, code: 'VALIDATION_FAILED', field: 'volumes.0.size_mb', mentions: ['volumes.0.size_mb', 'accepted', 'read_only'],
  },
  {
    name: 'volumes: read_only as "yes"',
    method: 'POST', path: '/v1/machines', body: () => ({ volumes: [{ volume_id: ctxRef.volumeA, mount_path: '/data', read_only: 'yes' }] }),
    status: 400, code: 'VALIDATION_FAILED', field: 'volumes.0.read_only', mentions: ['read_only', 'true or false'],
  },
  {
    name: 'volumes: a relative mount_path',
    method: 'POST', path: '/v1/machines', body: () => ({ volumes: [{ volume_id: ctxRef.volumeA, mount_path: 'data' }] }),
    status: 400, code: 'VALIDATION_FAILED', field: 'volumes.0.mount_path', mentions: ['volumes.0.mount_path', 'absolute'],
  },
  {
    name: 'volumes: mount_path /',
    method: 'POST', path: '/v1/machines', body: () => ({ volumes: [{ volume_id: ctxRef.volumeA, mount_path: '/' }] }),
    status: 400, code: 'VALIDATION_FAILED', field: 'volumes.0.mount_path', mentions: ['volumes.0.mount_path', 'root'],
  },
  {
    name: 'volumes: mount_path /data/.. (normalised to /)',
    method: 'POST', path: '/v1/machines', body: () => ({ volumes: [{ volume_id: ctxRef.volumeA, mount_path: '/data/..' }] }),
    status: 400, code: 'VALIDATION_FAILED', field: 'volumes.0.mount_path', mentions: ['must not be /'],
  },
  ...['/proc', '/proc/sys/x', '/sys', '/dev/shm', '/.hangar', '/.hangar/run', '/x/../dev'].map(
    (path): Case => ({
      name: `volumes: mount_path ${path}`,
      method: 'POST', path: '/v1/machines', body: () => ({ volumes: [{ volume_id: ctxRef.volumeA, mount_path: path }] }),
      status: 400, code: 'VALIDATION_FAILED', field: 'volumes.0.mount_path', mentions: ['volumes.0.mount_path', 'or below it'],
    }),
  ),
  {
    name: 'volumes: a mount_path that is a file in the template',
    method: 'POST', path: '/v1/machines', body: () => ({ volumes: [{ volume_id: ctxRef.volumeA, mount_path: '/etc/passwd' }] }),
    status: 400, code: 'VALIDATION_FAILED', field: 'volumes.0.mount_path', mentions: ['/etc/passwd', 'not a directory'],
  },
  {
    name: 'volumes: a mount_path with NUL',
    method: 'POST', path: '/v1/machines', body: () => ({ volumes: [{ volume_id: ctxRef.volumeA, mount_path: '/da\u0000ta' }] }),
    status: 400, code: 'VALIDATION_FAILED', field: 'volumes.0.mount_path', mentions: ['NUL'],
  },
  {
    name: 'volumes: two attachments at one mount path',
    method: 'POST', path: '/v1/machines',
    body: () => ({ volumes: [{ volume_id: ctxRef.volumeA, mount_path: '/data' }, { volume_id: ctxRef.heldVolumeA, mount_path: '/data/', read_only: true }] }),
    status: 400, code: 'VALIDATION_FAILED', field: 'volumes.1.mount_path', mentions: ['/data', 'volumes.0'],
  },
  {
    name: 'volumes: one mount path inside another',
    method: 'POST', path: '/v1/machines',
    body: () => ({ volumes: [{ volume_id: ctxRef.volumeA, mount_path: '/data/sub' }, { volume_id: ctxRef.heldVolumeA, mount_path: '/data', read_only: true }] }),
    status: 400, code: 'VALIDATION_FAILED', field: 'volumes.1.mount_path', mentions: ['inside one another'],
  },
  {
    name: 'volumes: one volume attached twice',
    method: 'POST', path: '/v1/machines',
    body: () => ({ volumes: [{ volume_id: ctxRef.volumeA, mount_path: '/a' }, { volume_id: ctxRef.volumeA, mount_path: '/b', read_only: true }] }),
    status: 400, code: 'VALIDATION_FAILED', field: 'volumes.1.volume_id', mentions: ['already attached', 'once'],
  },
  {
    name: 'volumes: nine attachments',
    method: 'POST', path: '/v1/machines', body: () => ({ volumes: Array.from({ length: 9 }, (_, i) => ({ volume_id: ctxRef.volumeA, mount_path: `/v${i}` })) }),
    status: 400, code: 'VALIDATION_FAILED', field: 'volumes', mentions: ['volumes', '8'],
  },
  {
    name: 'volumes: a volume that does not exist',
    method: 'POST', path: '/v1/machines', body: { volumes: [{ volume_id: 'vol_doesnotexist0000', mount_path: '/data' }] },
    status: 422, code: 'UNKNOWN_VOLUME', mentions: ['vol_doesnotexist0000', 'does not exist', 'GET /v1/volumes'],
  },
  {
    name: 'volumes: a volume of another team',
    as: 'B',
    method: 'POST', path: '/v1/machines', body: () => ({ volumes: [{ volume_id: ctxRef.volumeA, mount_path: '/data', read_only: true }] }),
    status: 422, code: 'UNKNOWN_VOLUME', mentions: ['does not exist for this team'],
  },
  {
    name: 'volumes: read-write to a volume another machine has read-write',
    method: 'POST', path: '/v1/machines', body: () => ({ volumes: [{ volume_id: ctxRef.heldVolumeA, mount_path: '/data' }] }),
    status: 409, code: 'VOLUME_IN_USE', mentions: ['read-write', 'read_only'],
    check: (b, c) => assert.deepEqual(b.details, { volume_id: c.heldVolumeA, machine_id: c.holderA }),
  },
  {
    name: 'volumes with snapshot_id',
    when: (c) => c.snapshotA !== undefined,
    method: 'POST', path: '/v1/machines', body: () => ({ snapshot_id: ctxRef.snapshotA, volumes: [{ volume_id: ctxRef.volumeA, mount_path: '/data' }] }),
    status: 422, code: 'UNSUPPORTED_OPERATION', mentions: ['volumes', 'snapshot'],
  },

  // --- volumes ---
  {
    name: 'volume create: no name',
    method: 'POST', path: '/v1/volumes', body: { size_mb: 64 },
    status: 400, code: 'VALIDATION_FAILED', field: 'name', mentions: ['name'],
  },
  ...['', '-dash', '../up', 'has space', 'x'.repeat(64), 'é'].map(
    (name): Case => ({
      name: `volume create: name ${JSON.stringify(name.length > 10 ? `${name.slice(0, 5)}…(${name.length})` : name)}`,
      method: 'POST', path: '/v1/volumes', body: { name, size_mb: 64 },
      status: 400, code: 'VALIDATION_FAILED', field: 'name', mentions: ['name', 'letters, digits'],
    }),
  ),
  {
    name: 'volume create: no size_mb',
    method: 'POST', path: '/v1/volumes', body: { name: 'v' },
    status: 400, code: 'VALIDATION_FAILED', field: 'size_mb', mentions: ['size_mb'],
  },
  {
    name: 'volume create: size_mb 15',
    method: 'POST', path: '/v1/volumes', body: { name: 'v', size_mb: 15 },
    status: 400, code: 'VALIDATION_FAILED', field: 'size_mb', mentions: ['size_mb', 'at least 16'],
  },
  {
    name: 'volume create: size_mb 1048577',
    method: 'POST', path: '/v1/volumes', body: { name: 'v', size_mb: 1_048_577 },
    status: 400, code: 'VALIDATION_FAILED', field: 'size_mb', mentions: ['size_mb', 'at most 1048576'],
  },
  {
    name: 'volume create: size_mb 16.5',
    method: 'POST', path: '/v1/volumes', body: { name: 'v', size_mb: 16.5 },
    status: 400, code: 'VALIDATION_FAILED', field: 'size_mb', mentions: ['size_mb', 'integer'],
  },
  {
    name: 'volume create: size_mb as a string',
    method: 'POST', path: '/v1/volumes', body: { name: 'v', size_mb: '64' },
    status: 400, code: 'VALIDATION_FAILED', field: 'size_mb', mentions: ['size_mb'],
  },
  {
    name: 'volume create: unknown field',
    method: 'POST', path: '/v1/volumes', body: { name: 'v', size_mb: 64, region: 'x' },
    status: 400, code: 'VALIDATION_FAILED', field: 'region', mentions: ['region', 'accepted', 'name', 'size_mb'],
  },
  {
    name: 'volume create: invalid JSON',
    method: 'POST', path: '/v1/volumes', rawBody: '{"name": "v",', headers: { 'content-type': 'application/json' },
    status: 400, code: 'INVALID_JSON', mentions: ['JSON'],
  },
  {
    name: 'volume create: a name the team has',
    method: 'POST', path: '/v1/volumes', body: { name: 'free', size_mb: 64 },
    status: 409, code: 'VOLUME_NAME_TAKEN', mentions: ['"free"', 'another name'],
  },
  {
    name: 'volume get: unknown id',
    method: 'GET', path: '/v1/volumes/vol_doesnotexist0000',
    status: 404, code: 'NOT_FOUND', mentions: ['vol_doesnotexist0000', 'does not exist'],
  },
  {
    name: 'volume get: a volume of another team',
    as: 'B',
    method: 'GET', path: (c) => `/v1/volumes/${c.volumeA}`,
    status: 404, code: 'NOT_FOUND', mentions: ['does not exist'],
  },
  {
    name: 'volume delete: a volume of another team',
    as: 'B',
    method: 'DELETE', path: (c) => `/v1/volumes/${c.volumeA}`,
    status: 404, code: 'NOT_FOUND', mentions: ['does not exist'],
  },
  {
    name: 'volume delete: attached to a live machine',
    method: 'DELETE', path: (c) => `/v1/volumes/${c.heldVolumeA}`,
    status: 409, code: 'VOLUME_IN_USE', mentions: ['destroy'],
    check: (b, c) => assert.deepEqual(b.details.machine_ids, [c.holderA]),
  },

  // --- list ---
  {
    name: 'list: state=foo',
    method: 'GET', path: '/v1/machines?state=foo',
    status: 400, code: 'VALIDATION_FAILED', field: 'query.state', mentions: ['state', 'foo', 'running', 'destroyed'],
  },
  {
    name: 'list: state= (empty)',
    method: 'GET', path: '/v1/machines?state=',
    status: 400, code: 'VALIDATION_FAILED', field: 'query.state', mentions: ['state', 'empty', 'running'],
  },
  {
    name: 'list: state=running,foo',
    method: 'GET', path: '/v1/machines?state=running,foo',
    status: 400, code: 'VALIDATION_FAILED', field: 'query.state', mentions: ['state', 'foo'],
  },
  {
    name: 'list: state given twice',
    method: 'GET', path: '/v1/machines?state=running&state=paused',
    status: 400, code: 'VALIDATION_FAILED', field: 'query.state', mentions: ['state', 'comma'],
  },
  {
    name: 'sandboxes list: state=foo',
    method: 'GET', path: '/v1/sandboxes?state=foo',
    status: 400, code: 'VALIDATION_FAILED', field: 'query.state', mentions: ['state', 'foo'],
  },
  {
    name: 'list: limit=0',
    method: 'GET', path: '/v1/machines?limit=0',
    status: 400, code: 'VALIDATION_FAILED', field: 'query.limit', mentions: ['limit', 'at least 1'],
  },
  {
    name: 'list: limit=101',
    method: 'GET', path: '/v1/machines?limit=101',
    status: 400, code: 'VALIDATION_FAILED', field: 'query.limit', mentions: ['limit', 'at most 100'],
  },
  {
    name: 'list: limit=abc',
    method: 'GET', path: '/v1/machines?limit=abc',
    status: 400, code: 'VALIDATION_FAILED', field: 'query.limit', mentions: ['limit', 'number'],
  },
  {
    name: 'list: limit=1.5',
    method: 'GET', path: '/v1/machines?limit=1.5',
    status: 400, code: 'VALIDATION_FAILED', field: 'query.limit', mentions: ['limit', 'integer'],
  },
  {
    name: 'list: next_token=garbage',
    method: 'GET', path: '/v1/machines?next_token=garbage',
    status: 400, code: 'INVALID_NEXT_TOKEN', mentions: ['next_token'],
  },
  {
    name: 'list: next_token with an edited position',
    method: 'GET', path: (c) => `/v1/machines?limit=1&next_token=${encodeURIComponent(`${Buffer.from('[0,"mch_zzzz"]').toString('base64url')}${c.tokenA.slice(c.tokenA.indexOf('.'))}`)}`,
    status: 400, code: 'INVALID_NEXT_TOKEN', mentions: ['next_token'],
  },
  {
    name: 'list: next_token of another team',
    as: 'B',
    method: 'GET', path: (c) => `/v1/machines?limit=1&next_token=${encodeURIComponent(c.tokenA)}`,
    status: 400, code: 'INVALID_NEXT_TOKEN', mentions: ['next_token'],
  },
  {
    name: 'list: next_token used with a different filter',
    method: 'GET', path: (c) => `/v1/machines?limit=1&template=base&next_token=${encodeURIComponent(c.tokenA)}`,
    status: 400, code: 'INVALID_NEXT_TOKEN', mentions: ['next_token', 'filters'],
  },
  {
    name: 'list: next_token used with another state set',
    method: 'GET', path: (c) => `/v1/machines?limit=1&state=running&next_token=${encodeURIComponent(c.tokenA)}`,
    status: 400, code: 'INVALID_NEXT_TOKEN', mentions: ['next_token'],
  },
  {
    name: 'list: metadata=notjson',
    method: 'GET', path: '/v1/machines?metadata=notjson',
    status: 400, code: 'VALIDATION_FAILED', field: 'query.metadata', mentions: ['metadata', 'JSON'],
  },
  {
    name: 'list: metadata=[1]',
    method: 'GET', path: `/v1/machines?metadata=${encodeURIComponent('[1]')}`,
    status: 400, code: 'VALIDATION_FAILED', field: 'query.metadata', mentions: ['metadata', 'object'],
  },
  {
    name: 'list: metadata=3',
    method: 'GET', path: '/v1/machines?metadata=3',
    status: 400, code: 'VALIDATION_FAILED', field: 'query.metadata', mentions: ['metadata', 'object'],
  },
  {
    name: 'list: metadata=null',
    method: 'GET', path: '/v1/machines?metadata=null',
    status: 400, code: 'VALIDATION_FAILED', field: 'query.metadata', mentions: ['metadata', 'object'],
  },
  {
    name: 'list: fields=bogus',
    method: 'GET', path: '/v1/machines?fields=bogus',
    status: 400, code: 'VALIDATION_FAILED', field: 'query.fields', mentions: ['fields', 'bogus', 'supported', 'traffic_access_token'],
  },
  {
    name: 'list: fields=id,bogus',
    method: 'GET', path: '/v1/machines?fields=id,bogus',
    status: 400, code: 'VALIDATION_FAILED', field: 'query.fields', mentions: ['fields', 'bogus', 'supported'],
    check: (b) => assert.doesNotMatch(b.message, /unknown field\(s\)[^;]*\bid\b/, 'id is a supported field, not a bad one'),
  },
  {
    name: 'list: fields= (empty)',
    method: 'GET', path: '/v1/machines?fields=',
    status: 400, code: 'VALIDATION_FAILED', field: 'query.fields', mentions: ['fields', 'supported'],
  },
  {
    name: 'list: several bad parameters at once are all named',
    method: 'GET', path: '/v1/machines?state=foo&metadata=notjson&fields=bogus',
    status: 400, code: 'VALIDATION_FAILED', mentions: ['state', 'metadata', 'fields'],
    check: (b) => {
      const named = (b.details.fields as Array<{ field: string }>).map((f) => f.field).sort();
      assert.deepEqual(named, ['query.fields', 'query.metadata', 'query.state']);
    },
  },

  // --- get ---
  {
    name: 'get: fields=bogus',
    method: 'GET', path: (c) => `/v1/machines/${c.machineA}?fields=bogus`,
    status: 400, code: 'VALIDATION_FAILED', field: 'query.fields', mentions: ['fields', 'bogus', 'supported'],
  },
  {
    name: 'sandbox get: fields=bogus',
    method: 'GET', path: (c) => `/v1/sandboxes/${c.machineA}?fields=bogus`,
    status: 400, code: 'VALIDATION_FAILED', field: 'query.fields', mentions: ['fields', 'bogus'],
  },
  {
    name: 'get: an id of 120 characters is just an unknown machine',
    method: 'GET', path: `/v1/machines/mch_${'a'.repeat(116)}`,
    status: 404, code: 'NOT_FOUND', mentions: ['does not exist'],
  },

  // --- timeout refresh ---
  {
    name: 'timeout: empty object',
    method: 'POST', path: (c) => `/v1/machines/${c.machineA}/timeout`, body: {},
    status: 400, code: 'VALIDATION_FAILED', field: 'timeout_ms', mentions: ['timeout_ms', 'required'],
  },
  {
    name: 'timeout: no body at all',
    method: 'POST', path: (c) => `/v1/machines/${c.machineA}/timeout`,
    status: 400, code: 'VALIDATION_FAILED', field: 'timeout_ms', mentions: ['timeout_ms', 'required'],
  },
  {
    name: 'timeout: timeout_ms "x"',
    method: 'POST', path: (c) => `/v1/machines/${c.machineA}/timeout`, body: { timeout_ms: 'x' },
    status: 400, code: 'VALIDATION_FAILED', field: 'timeout_ms', mentions: ['timeout_ms', 'integer'],
  },
  {
    name: 'timeout: unknown field',
    method: 'POST', path: (c) => `/v1/machines/${c.machineA}/timeout`, body: { timeout_ms: 60_000, extend: true },
    status: 400, code: 'VALIDATION_FAILED', field: 'extend', mentions: ['extend', 'accepted', 'timeout_ms'],
  },
  {
    name: 'timeout: timeout_ms 999',
    method: 'POST', path: (c) => `/v1/machines/${c.machineA}/timeout`, body: { timeout_ms: 999 },
    status: 400, code: 'VALIDATION_FAILED', field: 'timeout_ms', mentions: ['timeout_ms', 'at least 1000'],
  },
  {
    name: 'timeout: invalid JSON',
    method: 'POST', path: (c) => `/v1/machines/${c.machineA}/timeout`, rawBody: '{timeout_ms: 5}', headers: { 'content-type': 'application/json' },
    status: 400, code: 'INVALID_JSON', mentions: ['JSON'],
  },
  {
    name: 'timeout: a machine of another team',
    as: 'B',
    method: 'POST', path: (c) => `/v1/machines/${c.machineA}/timeout`, body: { timeout_ms: 60_000 },
    status: 404, code: 'NOT_FOUND', mentions: ['does not exist'],
  },

  // --- routes ---
  {
    name: 'unknown route',
    method: 'GET', path: '/v1/nope',
    status: 404, code: 'ROUTE_NOT_FOUND', mentions: ['/v1/nope', 'openapi'],
  },
  {
    name: 'unknown method on a known path',
    method: 'PUT', path: '/v1/machines', body: {},
    status: 404, code: 'ROUTE_NOT_FOUND', mentions: ['PUT', '/v1/machines'],
  },
];

describe('native API: bad input', () => {
  let t: TestServer;
  const ctx = ctxRef;

  /** Every machine as both teams see it, plus every row in the store: nothing may change. */
  async function world(): Promise<string> {
    const views: unknown[] = [];
    for (const key of [ctx.keyA, ctx.keyB]) {
      const r = await t.request('GET', `/v1/machines?state=${ALL_STATES}&limit=100`, { key });
      assert.equal(r.status, 200, r.text);
      views.push(
        (r.body.items as Array<Record<string, unknown>>).map((m) => [m.id, m.status, m.timeout_ms, m.timeout_at, m.timeout_action, m.config, m.metadata]),
      );
    }
    const rows = await t.server.store.machinesInStatus(MACHINE_STATUSES);
    views.push(rows.map((m) => [m.id, m.status, m.timeoutAt, m.deadlineAt]));
    for (const key of [ctx.keyA, ctx.keyB]) views.push((await t.request('GET', '/v1/volumes', { key })).body);
    views.push((await t.server.store.allVolumeIds()).sort(), (await readdir(t.server.settings.volumesDir).catch(() => [])).sort());
    return JSON.stringify(views);
  }

  async function send(c: Case): Promise<TestResponse> {
    const path = typeof c.path === 'function' ? c.path(ctx) : c.path;
    return t.request(c.method, path, {
      key: c.as === 'B' ? ctx.keyB : ctx.keyA,
      body: typeof c.body === 'function' ? (c.body as () => unknown)() : c.body,
      rawBody: c.rawBody,
      headers: c.headers,
    });
  }

  function assertAnswer(c: Case, r: TestResponse): void {
    const code = typeof c.code === 'function' ? c.code(ctx) : c.code;
    assert.equal(r.status, c.status, r.text);
    assert.equal(r.body.code, code, r.text);
    assert.ok(r.body.code in ERROR_CATALOGUE, `code ${r.body.code} is in the catalogue`);
    assert.deepEqual(Object.keys(r.body).filter((k) => !['code', 'message', 'details'].includes(k)), [], `only code, message, details: ${r.text.slice(0, 300)}`);
    const message = r.body.message as string;
    // A sentence; it may open with the parameter it is about ("next_token is not valid ...").
    assert.match(message, /^[A-Za-z]/, 'the message is a sentence');
    assert.ok(message.split(' ').length >= 4, `the message is a sentence: ${message}`);
    for (const m of c.mentions ?? []) {
      assert.ok(message.toLowerCase().includes(m.toLowerCase()), `message should mention "${m}": ${message}`);
    }
    if (code === 'VALIDATION_FAILED') {
      const fields = r.body.details?.fields as Array<{ field: string; message: string }> | undefined;
      assert.ok(Array.isArray(fields) && fields.length > 0, 'details.fields names each bad field');
      const named = fields.map((f) => f.field);
      assert.equal(new Set(named).size, named.length, `each bad field is named once: ${named.join(', ')}`);
      if (c.field !== undefined) assert.ok(named.includes(c.field), `details.fields names ${c.field}: ${JSON.stringify(fields)}`);
      for (const f of fields) assert.ok(f.field.length > 0 && f.message.length > 0, `a field problem has a field and a message: ${JSON.stringify(f)}`);
    }
    c.check?.(r.body, ctx);
  }

  before(async () => {
    t = await TestServer.start();
    ctx.keyA = (await t.newTeamKey('bad-input-a')).key;
    ctx.keyB = (await t.newTeamKey('bad-input-b')).key;
    const info = await t.request('GET', '/v1/info', { key: ctx.keyA });
    assert.equal(info.status, 200, info.text);
    ctx.snapshotsAvailable = info.body.snapshots?.available === true;
    // Two machines of team A: one to aim timeout refreshes at, and enough for a next_token.
    for (let i = 0; i < 2; i++) {
      const r = await t.request('POST', '/v1/machines', { key: ctx.keyA, body: { metadata: { n: i } } });
      assert.equal(r.status, 201, r.text);
      ctx.machineA = r.body.id;
    }
    const volume = async (name: string) => {
      const r = await t.request('POST', '/v1/volumes', { key: ctx.keyA, body: { name, size_mb: 16 } });
      assert.equal(r.status, 201, r.text);
      return r.body.id as string;
    };
    ctx.volumeA = await volume('free');
    ctx.heldVolumeA = await volume('held');
    const holder = await t.request('POST', '/v1/machines', { key: ctx.keyA, body: { volumes: [{ volume_id: ctx.heldVolumeA, mount_path: '/data' }] } });
    assert.equal(holder.status, 201, holder.text);
    ctx.holderA = holder.body.id;
    const page = await t.request('GET', '/v1/machines?limit=1', { key: ctx.keyA });
    assert.equal(page.status, 200, page.text);
    assert.equal(typeof page.body.next_token, 'string');
    ctx.tokenA = page.body.next_token;
    if (ctx.snapshotsAvailable) {
      const snap = await t.request('POST', `/v1/machines/${ctx.machineA}/snapshots`, { key: ctx.keyA });
      assert.equal(snap.status, 201, snap.text);
      ctx.snapshotA = snap.body.id;
    }
  });
  after(async () => {
    await t.dispose();
  });

  for (const c of cases) {
    it(`${c.name} → ${c.status}`, async (tc) => {
      if (c.when && !c.when(ctx)) {
        tc.skip('does not apply to this server');
        return;
      }
      const before = await world();
      const r = await send(c);
      // Whatever the answer, it is a catalogue error without internals, and it changed nothing.
      assert.ok(r.status >= 400 && r.status < 500, `a 4xx: ${r.status} ${r.text}`);
      assert.match(r.headers.get('content-type') ?? '', /^application\/json/);
      assert.equal(typeof r.body?.code, 'string', r.text);
      assert.equal(typeof r.body?.message, 'string', r.text);
      assert.doesNotMatch(r.text, STACK_TRACE, 'no stack trace in the body');
      assert.equal(await world(), before, 'nothing was created or changed');
      if (!c.todo) assertAnswer(c, r);
    });
    if (c.todo) {
      it(`${c.name} → ${c.status} ${typeof c.code === 'string' ? c.code : ''}: status, code and message`, { todo: c.todo }, async (tc) => {
        if (c.when && !c.when(ctx)) {
          tc.skip('does not apply to this server');
          return;
        }
        assertAnswer(c, await send(c));
      });
    }
  }

  it('the machines used above are still running, their deadlines untouched by refused refreshes', async () => {
    const r = await t.request('GET', `/v1/machines/${ctx.machineA}`, { key: ctx.keyA });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.status, 'running');
    assert.equal(r.body.timeout_ms, 300_000);
  });
});
