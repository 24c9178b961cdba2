import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { roleEnv, roleOf } from './role.js';
import { loadSettings, SettingsError } from './settings.js';

const DB = { HANGAR_DATABASE_URL: 'postgresql://hangar@db/hangar' };

describe('server roles', () => {
  it('serve is the default; an unknown role is refused, naming the roles', () => {
    assert.equal(roleOf(undefined), 'serve');
    assert.equal(roleOf('agent'), 'agent');
    assert.throws(() => roleOf('worker'), (err: unknown) => err instanceof SettingsError && /Unknown role "worker".*serve, agent, api/.test(err.message));
  });

  it('serve runs with the environment as it is', () => {
    const env = { HANGAR_HOST_CAPACITY: '0' };
    assert.equal(roleEnv('serve', env), env);
  });

  it('agent and api are parts of a fleet: without HANGAR_DATABASE_URL they say what to set', () => {
    for (const role of ['agent', 'api'] as const) {
      assert.throws(() => roleEnv(role, {}), (err: unknown) => err instanceof SettingsError && err.message.includes(`hangar ${role} is part of a fleet: set HANGAR_DATABASE_URL`));
    }
  });

  it('api runs no machine: its capacity is 0, and another capacity is refused', () => {
    const env = roleEnv('api', DB);
    assert.equal(env.HANGAR_HOST_CAPACITY, '0');
    assert.equal(loadSettings({ ...env, HANGAR_DATA_DIR: '/tmp/hangar-role-test' }).fleet.capacityMachines, 0);
    assert.equal(roleEnv('api', { ...DB, HANGAR_HOST_CAPACITY: '0' }).HANGAR_HOST_CAPACITY, '0');
    assert.throws(() => roleEnv('api', { ...DB, HANGAR_HOST_CAPACITY: '5' }), /hangar api runs no machine/);
  });

  it('agent runs machines: a capacity of 0 is refused, any other kept', () => {
    assert.throws(() => roleEnv('agent', { ...DB, HANGAR_HOST_CAPACITY: '0' }), /hangar agent runs machines/);
    assert.equal(roleEnv('agent', { ...DB, HANGAR_HOST_CAPACITY: '40' }).HANGAR_HOST_CAPACITY, '40');
    assert.equal(roleEnv('agent', DB).HANGAR_HOST_CAPACITY, undefined);
  });
});
