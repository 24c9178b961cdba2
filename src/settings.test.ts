/** Settings of the Paperspace-style surface: defaults, overrides, and bad values failing the boot. */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DEFAULT_MACHINE_TYPES } from './domain/machine-type.js';
import { loadSettings, SettingsError } from './settings.js';

// One data dir for every case: loading settings only reads it.
let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hangar-settings-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});
const load = (env: Record<string, string>) => loadSettings({ HANGAR_DATA_DIR: dir, ...env });

describe('settings: Paperspace-style surface', () => {
  it('defaults: /paperspace/v1, region local, C1-C5, ten disk sizes', () => {
    const s = load({}).paperspace;
    assert.equal(s.basePath, '/paperspace/v1');
    assert.deepEqual(load({}).regions, ['local']);
    assert.deepEqual(s.machineTypes, DEFAULT_MACHINE_TYPES);
    assert.deepEqual(s.diskSizesGb, [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000]);
  });

  it('overrides', () => {
    const s = load({
      HANGAR_PAPERSPACE_BASE: '/ps',
      HANGAR_PAPERSPACE_MACHINE_TYPES: '[{"label":"tiny","vcpus":1,"memory_mb":64}]',
      HANGAR_PAPERSPACE_DISK_SIZES: '5,10',
    }).paperspace;
    assert.deepEqual(s, { basePath: '/ps', machineTypes: [{ label: 'tiny', vcpus: 1, memory_mb: 64 }], diskSizesGb: [5, 10] });
  });

  it('regions: HANGAR_REGIONS in order (the first is the default), or the older one-region HANGAR_PAPERSPACE_REGION', () => {
    assert.deepEqual(load({ HANGAR_REGIONS: 'ny2,ca1,ams1' }).regions, ['ny2', 'ca1', 'ams1']);
    assert.deepEqual(load({ HANGAR_PAPERSPACE_REGION: 'ams1' }).regions, ['ams1']);
    assert.throws(() => load({ HANGAR_REGIONS: 'ny2', HANGAR_PAPERSPACE_REGION: 'ams1' }), (e: unknown) => e instanceof SettingsError && e.message.includes('set HANGAR_REGIONS only'));
  });

  it('bad values fail with the variable named', () => {
    for (const [name, value] of [
      ['HANGAR_PAPERSPACE_BASE', 'paperspace/'],
      ['HANGAR_PAPERSPACE_REGION', 'two words'],
      ['HANGAR_REGIONS', 'ny2,,ca1'],
      ['HANGAR_REGIONS', 'ny2,ny2'],
      ['HANGAR_REGIONS', 'two words'],
      ['HANGAR_PAPERSPACE_MACHINE_TYPES', 'not json'],
      ['HANGAR_PAPERSPACE_MACHINE_TYPES', '[]'],
      ['HANGAR_PAPERSPACE_MACHINE_TYPES', '[{"label":"a","vcpus":0,"memory_mb":64}]'],
      ['HANGAR_PAPERSPACE_MACHINE_TYPES', '[{"label":"a","vcpus":1,"memory_mb":64},{"label":"a","vcpus":2,"memory_mb":64}]'],
      ['HANGAR_PAPERSPACE_MACHINE_TYPES', '[{"label":"G1","vcpus":4,"memory_mb":8192,"accelerators":[{"name":"A100","count":1}]}]'],
      ['HANGAR_KEY_RATE_LIMIT', '-1'],
      ['HANGAR_KEY_RATE_BURST', '0'],
      ['HANGAR_PAPERSPACE_DISK_SIZES', '1,,2'],
      ['HANGAR_PAPERSPACE_DISK_SIZES', '0'],
      ['HANGAR_PAPERSPACE_DISK_SIZES', '5000'],
    ] as const) {
      assert.throws(() => load({ [name]: value }), (e: unknown) => e instanceof SettingsError && e.message.includes(name), `${name}=${value}`);
    }
  });
});

describe('settings: HANGAR_INGRESS_DOMAIN', () => {
  it('unset: host-based ingress is off', () => {
    assert.equal(load({}).ingressDomain, null);
  });

  it('a domain name, kept in lower case', () => {
    assert.equal(load({ HANGAR_INGRESS_DOMAIN: 'Machines.Example.COM' }).ingressDomain, 'machines.example.com');
    assert.equal(load({ HANGAR_INGRESS_DOMAIN: 'localhost' }).ingressDomain, 'localhost');
  });

  it('anything else fails the boot with the variable named', () => {
    for (const value of ['', 'http://machines.example.com', 'machines.example.com:8080', 'machines.example.com.', '*.example.com', '-a.example.com', 'a..b']) {
      assert.throws(() => load({ HANGAR_INGRESS_DOMAIN: value }), (e: unknown) => e instanceof SettingsError && e.message.includes('HANGAR_INGRESS_DOMAIN'), value);
    }
  });
});

describe('settings: shared template directories', () => {
  it('HANGAR_TEMPLATE_PATH: default /var/lib/hangar/templates; a list separated by ":"; empty means none', () => {
    assert.deepEqual(load({}).templatePath, ['/var/lib/hangar/templates']);
    assert.deepEqual(load({ HANGAR_TEMPLATE_PATH: '/srv/a:/srv/b/' }).templatePath, ['/srv/a', '/srv/b']);
    assert.deepEqual(load({ HANGAR_TEMPLATE_PATH: '' }).templatePath, []);
  });

  it('HANGAR_TEMPLATE_PATH: a relative directory fails the boot with the variable named', () => {
    assert.throws(() => load({ HANGAR_TEMPLATE_PATH: 'templates' }), (e: unknown) => e instanceof SettingsError && /HANGAR_TEMPLATE_PATH/.test(e.message));
    assert.throws(() => load({ HANGAR_TEMPLATE_PATH: '/a:b' }), (e: unknown) => e instanceof SettingsError && /HANGAR_TEMPLATE_PATH/.test(e.message));
  });
});

describe('settings: HANGAR_DATABASE_URL', () => {
  it('unset: the SQLite file in the data dir', () => {
    const s = load({});
    assert.equal(s.databaseUrl, null);
    assert.equal(s.databasePath, join(s.dataDir, 'hangar.db'));
  });

  it('a postgres:// or postgresql:// URL, kept as given', () => {
    for (const url of ['postgres://hangar:pw@db.internal:5432/hangar', 'postgresql://hangar@localhost/hangar?host=/run/postgresql']) {
      assert.equal(load({ HANGAR_DATABASE_URL: url }).databaseUrl, url);
    }
  });

  it('anything else fails the boot with the variable named, without echoing the value (it may hold a password)', () => {
    for (const value of ['', 'mysql://u:s3cret@db/hangar', 'db.internal/hangar', 'postgres://', 'postgres://u:s3cret@db/ hangar']) {
      assert.throws(
        () => load({ HANGAR_DATABASE_URL: value }),
        (e: unknown) => e instanceof SettingsError && e.message.includes('HANGAR_DATABASE_URL') && !e.message.includes('s3cret'),
        value,
      );
    }
  });
});

describe('settings: HANGAR_KEY_RATE_LIMIT', () => {
  it('off by default; a rate with a burst of twice it unless HANGAR_KEY_RATE_BURST says', () => {
    assert.equal(load({}).keyRateLimit, null);
    assert.equal(load({ HANGAR_KEY_RATE_LIMIT: '0' }).keyRateLimit, null);
    assert.deepEqual(load({ HANGAR_KEY_RATE_LIMIT: '20' }).keyRateLimit, { perSecond: 20, burst: 40 });
    assert.deepEqual(load({ HANGAR_KEY_RATE_LIMIT: '0.2' }).keyRateLimit, { perSecond: 0.2, burst: 1 });
    assert.deepEqual(load({ HANGAR_KEY_RATE_LIMIT: '5', HANGAR_KEY_RATE_BURST: '100' }).keyRateLimit, { perSecond: 5, burst: 100 });
  });
});

describe('settings: the fleet (HANGAR_HOST_ID, HANGAR_ADVERTISE_URL, HANGAR_HOST_CAPACITY, heartbeats)', () => {
  it('defaults: {hostname}/{instance prefix}, no URL until listening, capacity = HANGAR_MAX_MACHINES, 2 s beats, down after 15 s', () => {
    const s = load({ HANGAR_MAX_MACHINES: '30' });
    assert.match(s.fleet.hostId, new RegExp(`/${s.instancePrefix}$`));
    assert.deepEqual({ ...s.fleet, hostId: '' }, { hostId: '', advertiseUrl: null, capacityMachines: 30, heartbeatMs: 2000, downAfterMs: 15_000, forgetAfterMs: 86_400_000 });
  });

  it('the default is kept in the data dir: a new hostname later still gets the first id', async () => {
    const own = await mkdtemp(join(tmpdir(), 'hangar-settings-host-'));
    try {
      const first = loadSettings({ HANGAR_DATA_DIR: own }).fleet.hostId;
      assert.equal(await readFile(join(own, 'host-id'), 'utf8'), `${first}\n`);
      await writeFile(join(own, 'host-id'), 'old-name/hangar-00000000\n');
      assert.equal(loadSettings({ HANGAR_DATA_DIR: own }).fleet.hostId, 'old-name/hangar-00000000');
      assert.equal(loadSettings({ HANGAR_DATA_DIR: own, HANGAR_HOST_ID: 'given' }).fleet.hostId, 'given');
    } finally {
      await rm(own, { recursive: true, force: true });
    }
  });

  it('HANGAR_SNAPSHOTS_DIR: the data dir\'s snapshots by default, else the directory given, made absolute', () => {
    const s = load({});
    assert.equal(s.snapshotsDir, join(s.dataDir, 'snapshots'));
    assert.equal(load({ HANGAR_SNAPSHOTS_DIR: '/mnt/shared/snapshots' }).snapshotsDir, '/mnt/shared/snapshots');
    assert.equal(load({ HANGAR_SNAPSHOTS_DIR: 'rel/snaps' }).snapshotsDir, join(process.cwd(), 'rel/snaps'));
    assert.throws(() => load({ HANGAR_SNAPSHOTS_DIR: '' }), /HANGAR_SNAPSHOTS_DIR/);
  });

  it('overrides', () => {
    const s = load({ HANGAR_HOST_ID: 'rack1/host-7', HANGAR_ADVERTISE_URL: 'http://10.0.0.7:8080', HANGAR_HOST_CAPACITY: '0', HANGAR_HEARTBEAT_MS: '500', HANGAR_HOST_DOWN_AFTER_MS: '1000', HANGAR_HOST_FORGET_AFTER_MS: '60000' });
    assert.deepEqual(s.fleet, { hostId: 'rack1/host-7', advertiseUrl: 'http://10.0.0.7:8080', capacityMachines: 0, heartbeatMs: 500, downAfterMs: 1000, forgetAfterMs: 60_000 });
  });

  it('bad values fail the boot with the variable named', () => {
    const cases: Array<[Record<string, string>, RegExp]> = [
      [{ HANGAR_HOST_ID: 'has space' }, /HANGAR_HOST_ID/],
      [{ HANGAR_ADVERTISE_URL: 'http://h:1/path' }, /HANGAR_ADVERTISE_URL: must be http\(s\):\/\/host\[:port\], with no path/],
      [{ HANGAR_HOST_CAPACITY: '-1' }, /HANGAR_HOST_CAPACITY/],
      [{ HANGAR_HEARTBEAT_MS: '1000', HANGAR_HOST_DOWN_AFTER_MS: '1500' }, /HANGAR_HOST_DOWN_AFTER_MS: must be at least 2 × HANGAR_HEARTBEAT_MS \(2000\)/],
      [{ HANGAR_HOST_DOWN_AFTER_MS: '20000', HANGAR_HOST_FORGET_AFTER_MS: '10000' }, /HANGAR_HOST_FORGET_AFTER_MS: must be at least HANGAR_HOST_DOWN_AFTER_MS \(20000\)/],
    ];
    for (const [env, want] of cases) assert.throws(() => load(env), (err: Error) => err instanceof SettingsError && want.test(err.message), JSON.stringify(env));
  });
});
