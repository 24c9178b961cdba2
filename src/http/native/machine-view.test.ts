/**
 * The machine object's presence rules (seeds 000, 001, 003 and native-api.md), the
 * `fields` mask and the list query parser.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HangarError } from '../../domain/errors.js';
import { MACHINE_STATUSES, newMachineRecord, type MachineRecord } from '../../domain/machine.js';
import { parseFields, parseListQuery, renderMachine } from './machine-view.js';
import { MachineSchema, MASKABLE_FIELDS, SandboxSchema } from './schemas.js';

const T0 = Date.UTC(2024, 0, 2, 3, 4, 5, 678);
const iso = (ms: number): string => new Date(ms).toISOString();

/** A running machine with no optional field set. */
function machine(o: Partial<MachineRecord> = {}): MachineRecord {
  return newMachineRecord({
    id: 'mch_view00000000001',
    teamId: 'team_a',
    template: 'base',
    createdAt: T0 - 500,
    status: 'running',
    config: { vcpus: 2, memory_mb: 256, disk_mb: 2048 },
    metadata: { a: 1 },
    env: { SECRET_ENV: 'never-rendered' },
    timeoutMs: 60_000,
    timeoutAt: T0 + 60_000,
    startedAt: T0,
    deadlineAt: T0 + 60_000,
    outbound: { mode: 'allow' },
    ...o,
  });
}

/** Every optional field set; paused so snapshot_id shows. */
const FULL = machine({
  status: 'paused',
  cwd: '/work',
  lastActiveAt: T0 + 1_000,
  inactivityTimeoutMs: 30_000,
  autoDeleteAfterMs: 3_600_000,
  ephemeral: true,
  pausedAt: T0 + 2_000,
  snapshotId: 'snap_abc',
  warmPoolCheckout: { hit: true, id: 'pool_1' },
});

const keys = (o: Record<string, unknown>): string[] => Object.keys(o).sort();
const sorted = (a: Iterable<string>): string[] => [...a].sort();

const SANDBOX = [
  'id', 'status', 'config', 'template', 'created_at', 'metadata', 'started_at', 'timeout_ms', 'timeout_at',
  'expires_at', 'timeout_action', 'cwd', 'snapshot_id', 'warm_pool_checkout', 'traffic_access_token',
];
const ALWAYS = [
  'id', 'status', 'config', 'template', 'created_at', 'metadata', 'timeout_ms', 'timeout_at', 'expires_at',
  'remaining_ms', 'timeout_action', 'inactivity_timeout_ms', 'auto_delete_after_ms', 'ephemeral', 'network', 'isolation',
];

function assertValidation(fn: () => unknown, check: (message: string, fields: Array<{ field: string; message: string }>) => void): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof HangarError, String(err));
    assert.equal(err.code, 'VALIDATION_FAILED');
    check(err.message, (err.details?.fields ?? []) as Array<{ field: string; message: string }>);
    return true;
  });
}

describe('renderMachine: the machine view', () => {
  it('a plain running machine has the always-present fields plus started_at, with their values', () => {
    const m = machine();
    const r = renderMachine(m, { now: T0 + 10_000, view: 'machine' });
    assert.deepEqual(keys(r), sorted([...ALWAYS, 'started_at']));
    assert.equal(r.id, m.id);
    assert.equal(r.status, 'running');
    assert.deepEqual(r.config, m.config);
    assert.equal(r.template, 'base');
    assert.equal(r.created_at, iso(T0 - 500));
    assert.deepEqual(r.metadata, { a: 1 });
    assert.equal(r.started_at, iso(T0));
    assert.equal(r.timeout_ms, 60_000);
    assert.equal(r.timeout_at, iso(T0 + 60_000));
    assert.equal(r.timeout_action, 'destroy');
    assert.equal(r.inactivity_timeout_ms, null);
    assert.equal(r.auto_delete_after_ms, null);
    assert.equal(r.ephemeral, false);
    assert.ok(!('env' in r), 'env is never rendered');
  });

  it('started_at is absent while creating', () => {
    const r = renderMachine(machine({ status: 'creating', startedAt: null }), { now: T0, view: 'machine' });
    assert.ok(!('started_at' in r));
    assert.equal(r.status, 'creating');
  });

  it('expires_at equals timeout_at, as an ISO-8601 UTC string', () => {
    const r = renderMachine(machine({ timeoutAt: T0 + 12_345 }), { now: T0, view: 'machine' });
    assert.equal(r.timeout_at, '2024-01-02T03:04:18.023Z');
    assert.equal(r.expires_at, r.timeout_at);
  });

  it('remaining_ms is computed from `now` and clamped at 0', () => {
    const m = machine();
    assert.equal(renderMachine(m, { now: T0, view: 'machine' }).remaining_ms, 60_000);
    assert.equal(renderMachine(m, { now: T0 + 59_999, view: 'machine' }).remaining_ms, 1);
    assert.equal(renderMachine(m, { now: T0 + 60_000, view: 'machine' }).remaining_ms, 0);
    assert.equal(renderMachine(m, { now: T0 + 999_999, view: 'machine' }).remaining_ms, 0);
  });

  it('remaining_ms of a destroyed machine is 0 even before its old deadline', () => {
    const r = renderMachine(machine({ status: 'destroyed', destroyedAt: T0 + 1 }), { now: T0 + 2, view: 'machine' });
    assert.equal(r.remaining_ms, 0);
  });

  it('last_active_at is absent until set, then rendered', () => {
    assert.ok(!('last_active_at' in renderMachine(machine(), { now: T0, view: 'machine' })));
    const r = renderMachine(machine({ lastActiveAt: T0 + 5 }), { now: T0, view: 'machine' });
    assert.equal(r.last_active_at, iso(T0 + 5));
  });

  it('inactivity_timeout_ms, auto_delete_after_ms and ephemeral are rendered when set', () => {
    const r = renderMachine(machine({ inactivityTimeoutMs: 5_000, autoDeleteAfterMs: 0, ephemeral: true }), { now: T0, view: 'machine' });
    assert.equal(r.inactivity_timeout_ms, 5_000);
    assert.equal(r.auto_delete_after_ms, 0);
    assert.equal(r.ephemeral, true);
  });

  it('snapshot_id appears only while paused', () => {
    for (const status of MACHINE_STATUSES) {
      const r = renderMachine(machine({ status, snapshotId: 'snap_abc' }), { now: T0, view: 'machine' });
      if (status === 'paused') assert.equal(r.snapshot_id, 'snap_abc');
      else assert.ok(!('snapshot_id' in r), status);
    }
    assert.ok(!('snapshot_id' in renderMachine(machine({ status: 'paused', snapshotId: null }), { now: T0, view: 'machine' })));
  });

  it('warm_pool_checkout appears only when set', () => {
    assert.ok(!('warm_pool_checkout' in renderMachine(machine(), { now: T0, view: 'machine' })));
    for (const wp of [{ hit: true, id: 'p1' }, { hit: false, id: 'p2' }]) {
      assert.deepEqual(renderMachine(machine({ warmPoolCheckout: wp }), { now: T0, view: 'machine' }).warm_pool_checkout, wp);
    }
  });

  it('traffic_access_token appears only when given', () => {
    assert.ok(!('traffic_access_token' in renderMachine(machine(), { now: T0, view: 'machine' })));
    assert.equal(renderMachine(machine(), { now: T0, view: 'machine', trafficToken: 'tat_x' }).traffic_access_token, 'tat_x');
  });

  it('error_reason appears only when status is error', () => {
    for (const status of MACHINE_STATUSES) {
      const r = renderMachine(machine({ status, errorReason: 'runc exited 1' }), { now: T0, view: 'machine' });
      if (status === 'error') assert.equal(r.error_reason, 'runc exited 1');
      else assert.ok(!('error_reason' in r), status);
    }
  });

  it('private_ip appears while the machine holds resources; public only when true', () => {
    for (const status of MACHINE_STATUSES) {
      const r = renderMachine(machine({ status, privateIp: '10.1.2.3' }), { now: T0, view: 'machine' });
      assert.equal(r.private_ip, ['creating', 'running', 'paused'].includes(status) ? '10.1.2.3' : undefined, status);
    }
    assert.ok(!('public' in renderMachine(machine(), { now: T0, view: 'machine' })));
    assert.equal(renderMachine(machine({ public: true }), { now: T0, view: 'machine' }).public, true);
    assert.ok(!('private_ip' in renderMachine(machine({ privateIp: '10.1.2.3' }), { now: T0, view: 'sandbox' })));
  });

  it('auto_resume appears only when true, and not in the sandbox view', () => {
    assert.ok(!('auto_resume' in renderMachine(machine(), { now: T0, view: 'machine' })));
    assert.equal(renderMachine(machine({ autoResume: true }), { now: T0, view: 'machine' }).auto_resume, true);
    assert.ok(!('auto_resume' in renderMachine(machine({ autoResume: true }), { now: T0, view: 'sandbox' })));
  });

  it('cwd appears only when configured', () => {
    assert.ok(!('cwd' in renderMachine(machine(), { now: T0, view: 'machine' })));
    assert.equal(renderMachine(machine({ cwd: '/srv/app' }), { now: T0, view: 'machine' }).cwd, '/srv/app');
  });

  it('a machine with every optional field set renders all of them', () => {
    const r = renderMachine(FULL, { now: T0, view: 'machine', trafficToken: 'tat_x' });
    assert.deepEqual(
      keys(r),
      sorted([...ALWAYS, 'started_at', 'last_active_at', 'cwd', 'snapshot_id', 'warm_pool_checkout', 'traffic_access_token']),
    );
  });

  it('auto snapshots (with when the next is due) and a restore point render when set, never in the sandbox view', () => {
    const m = machine({ autoSnapshot: { frequency: 'hourly', keep: 3, since: T0, lastAt: T0 + 60_000 }, restorePoint: { frequency: 'shutdown', snapshotId: 'snap_rp' } });
    const r = renderMachine(m, { now: T0, view: 'machine' });
    MachineSchema.parse(r);
    assert.deepEqual(r.auto_snapshot, { frequency: 'hourly', keep: 3, next_at: iso(T0 + 60_000 + 3_600_000) });
    assert.equal(r.restore_point_snapshot_id, 'snap_rp');
    const plain = renderMachine(machine(), { now: T0, view: 'machine' });
    assert.ok(!('auto_snapshot' in plain) && !('restore_point_snapshot_id' in plain));
    const sandbox = renderMachine(m, { now: T0, view: 'sandbox' });
    assert.ok(!('auto_snapshot' in sandbox) && !('restore_point_snapshot_id' in sandbox));
  });

  it('metadata is returned verbatim, key order included', () => {
    const metadata = { z: 1, a: { y: [3, 2, 1], b: null }, m: 'x' };
    const r = renderMachine(machine({ metadata }), { now: T0, view: 'machine' });
    assert.equal(JSON.stringify(r.metadata), JSON.stringify(metadata));
  });
});

describe('renderMachine: the sandbox view', () => {
  it('has exactly the sandbox field set when everything is present', () => {
    const r = renderMachine(FULL, { now: T0, view: 'sandbox', trafficToken: 'tat_x' });
    assert.deepEqual(keys(r), sorted(SANDBOX));
    assert.equal(r.expires_at, r.timeout_at);
  });

  it('never has the machine-only fields', () => {
    for (const status of ['creating', 'running', 'paused', 'destroyed'] as const) {
      const r = renderMachine({ ...FULL, status }, { now: T0, view: 'sandbox' });
      for (const k of ['remaining_ms', 'last_active_at', 'inactivity_timeout_ms', 'auto_delete_after_ms', 'ephemeral']) {
        assert.ok(!(k in r), `${status}: ${k}`);
      }
      for (const k of Object.keys(r)) assert.ok(SANDBOX.includes(k), `${status}: unexpected ${k}`);
    }
  });

  it('keeps the presence rules (no started_at while creating, no snapshot_id unless paused, no token unless given)', () => {
    const r = renderMachine(machine({ status: 'creating', startedAt: null, snapshotId: 'snap_x' }), { now: T0, view: 'sandbox' });
    assert.deepEqual(
      keys(r),
      sorted(['id', 'status', 'config', 'template', 'created_at', 'metadata', 'timeout_ms', 'timeout_at', 'expires_at', 'timeout_action']),
    );
  });
});

describe('renderMachine: the fields mask', () => {
  it('yields exactly the named fields', () => {
    const fields = ['id', 'status', 'timeout_at', 'metadata'];
    const r = renderMachine(FULL, { now: T0, view: 'machine', fields });
    assert.deepEqual(keys(r), sorted(fields));
    assert.equal(r.timeout_at, iso(FULL.timeoutAt));
  });

  it('every maskable field alone yields exactly that field when present', () => {
    for (const f of MASKABLE_FIELDS) {
      const r = renderMachine(FULL, { now: T0, view: 'machine', fields: [f], trafficToken: 'tat_x' });
      assert.deepEqual(Object.keys(r), [f]);
    }
  });

  it('drops named fields that are absent by rule', () => {
    const fields = ['id', 'cwd', 'snapshot_id', 'started_at', 'traffic_access_token'];
    const r = renderMachine(machine({ status: 'creating', startedAt: null, snapshotId: 'snap_x' }), { now: T0, view: 'machine', fields });
    assert.deepEqual(Object.keys(r), ['id']);
  });

  it('the full maskable set on a fully populated machine is exactly that set (no remaining_ms, no error_reason)', () => {
    const r = renderMachine(FULL, { now: T0, view: 'machine', fields: MASKABLE_FIELDS, trafficToken: 'tat_x' });
    assert.deepEqual(keys(r), sorted(MASKABLE_FIELDS));
    const e = renderMachine(machine({ status: 'error', errorReason: 'x' }), { now: T0, view: 'machine', fields: ['id'] });
    assert.deepEqual(Object.keys(e), ['id']);
  });

  it('applies to the sandbox view too', () => {
    const r = renderMachine(FULL, { now: T0, view: 'sandbox', fields: ['id', 'snapshot_id'] });
    assert.deepEqual(keys(r), ['id', 'snapshot_id']);
  });
});

describe('renderMachine: agreement with the documented schemas', () => {
  const variant = (status: MachineRecord['status']): MachineRecord => ({ ...FULL, status, errorReason: 'boom' });

  it('the machine view validates against MachineSchema (strict: no undeclared key) in every status', () => {
    for (const status of MACHINE_STATUSES) {
      for (const m of [variant(status), machine({ status })]) {
        const r = renderMachine(m, { now: T0, view: 'machine', trafficToken: 'tat_x' });
        const parsed = MachineSchema.strict().safeParse(r);
        assert.ok(parsed.success, `${status}: ${JSON.stringify(parsed.error?.issues)}`);
      }
    }
  });

  it('the sandbox view validates against SandboxSchema (strict) when not in error', () => {
    for (const status of ['creating', 'running', 'paused', 'destroyed'] as const) {
      const r = renderMachine(variant(status), { now: T0, view: 'sandbox', trafficToken: 'tat_x' });
      const parsed = SandboxSchema.strict().safeParse(r);
      assert.ok(parsed.success, `${status}: ${JSON.stringify(parsed.error?.issues)}`);
    }
  });

  it('the sandbox view of an error machine adds only error_reason, which SandboxSchema declares', () => {
    const r = renderMachine(variant('error'), { now: T0, view: 'sandbox' });
    for (const k of Object.keys(r)) assert.ok(SANDBOX.includes(k) || k === 'error_reason', `unexpected ${k}`);
    assert.equal(typeof r.error_reason, 'string');
    assert.ok(SandboxSchema.strict().safeParse(r).success);
  });
});

describe('parseFields', () => {
  it('undefined means no mask', () => {
    assert.equal(parseFields(undefined), undefined);
  });

  it('splits, trims and de-duplicates, keeping first-seen order', () => {
    assert.deepEqual(parseFields('id, status,id,,config ,status'), ['id', 'status', 'config']);
  });

  it('accepts every supported field', () => {
    assert.deepEqual(parseFields(MASKABLE_FIELDS.join(',')), [...MASKABLE_FIELDS]);
  });

  it('an unknown field is VALIDATION_FAILED naming it and every supported field', () => {
    for (const raw of ['id,bogus', 'remaining_ms', 'error_reason', 'ID']) {
      assertValidation(
        () => parseFields(raw),
        (message, problems) => {
          assert.equal(problems.length, 1);
          assert.equal(problems[0]!.field, 'query.fields');
          for (const f of MASKABLE_FIELDS) assert.ok(message.includes(f), `${raw}: message names ${f}`);
          assert.ok(message.includes(raw.split(',').at(-1)!), `${raw}: message names the bad field`);
        },
      );
    }
  });

  it('an empty mask is VALIDATION_FAILED', () => {
    for (const raw of ['', ',', ' , ']) {
      assertValidation(() => parseFields(raw), (message) => assert.match(message, /empty/));
    }
  });
});

describe('parseListQuery', () => {
  it('no parameter: the legacy (unpaginated) form with nothing set', () => {
    const p = parseListQuery({});
    assert.equal(p.input.paginated, false);
    assert.equal(p.input.states, undefined);
    assert.equal(p.input.metadata, undefined);
    assert.equal(p.fields, undefined);
  });

  it('any one list parameter makes it paginated', () => {
    const one: Array<Parameters<typeof parseListQuery>[0]> = [
      { state: 'running' },
      { limit: 5 },
      { next_token: 'abc' },
      { template: 'base' },
      { metadata: '{}' },
      { fields: 'id' },
    ];
    for (const q of one) assert.equal(parseListQuery(q).input.paginated, true, JSON.stringify(q));
  });

  it('passes every parameter through', () => {
    const p = parseListQuery({ state: 'running,paused', limit: 7, next_token: 't', template: 'py', metadata: '{"k":{"n":[1]}}', fields: 'id,status' });
    assert.deepEqual(p.input, {
      states: ['running', 'paused'],
      template: 'py',
      metadata: { k: { n: [1] } },
      limit: 7,
      nextToken: 't',
      paginated: true,
    });
    assert.deepEqual(p.fields, ['id', 'status']);
  });

  it('states are trimmed and de-duplicated', () => {
    assert.deepEqual(parseListQuery({ state: 'running, paused,running,,paused' }).input.states, ['running', 'paused']);
  });

  it('an unknown state is VALIDATION_FAILED naming the valid states', () => {
    for (const state of ['runing', 'running,stopped', 'RUNNING', 'deleted']) {
      assertValidation(
        () => parseListQuery({ state }),
        (message, problems) => {
          assert.ok(problems.some((p) => p.field === 'query.state'));
          for (const s of MACHINE_STATUSES) assert.ok(message.includes(s), `${state}: names ${s}`);
        },
      );
    }
  });

  it('an empty state is VALIDATION_FAILED', () => {
    assertValidation(() => parseListQuery({ state: ',' }), (_m, problems) => assert.equal(problems[0]?.field, 'query.state'));
  });

  it('metadata that is not JSON is VALIDATION_FAILED', () => {
    for (const metadata of ['{a:1}', 'not json', '', '{"a":']) {
      assertValidation(() => parseListQuery({ metadata }), (message, problems) => {
        assert.equal(problems[0]?.field, 'query.metadata');
        assert.match(message, /JSON/);
      });
    }
  });

  it('metadata that is an array or a scalar (null included) is VALIDATION_FAILED', () => {
    for (const metadata of ['[]', '[{"a":1}]', '1', '"x"', 'true', 'null']) {
      assertValidation(() => parseListQuery({ metadata }), (message, problems) => {
        assert.equal(problems.length, 1, metadata);
        assert.equal(problems[0]?.field, 'query.metadata');
        assert.match(message, /object/);
      });
    }
  });

  it('an unknown field is VALIDATION_FAILED naming the supported ones', () => {
    assertValidation(() => parseListQuery({ fields: 'id,nope' }), (message, problems) => {
      assert.equal(problems[0]?.field, 'query.fields');
      assert.match(message, /nope/);
      for (const f of MASKABLE_FIELDS) assert.ok(message.includes(f));
    });
  });

  it('reports every bad parameter at once', () => {
    assertValidation(() => parseListQuery({ state: 'bogus', metadata: '[]', fields: 'nope' }), (_m, problems) => {
      assert.deepEqual(problems.map((p) => p.field).sort(), ['query.fields', 'query.metadata', 'query.state']);
    });
  });
});
