/**
 * The compute machines listing (seed 004) against a real server with real machines:
 * every field of the seed with its type and nesting, the filters, team isolation,
 * stats that move with what the machine does, and bad filters.
 */
import assert from 'node:assert/strict';
import { cp, readFile, stat, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { run } from '../../runtime/runc/command.js';
import { layerPaths } from '../../runtime/runc/writable-layer.js';
import { VERSION } from '../../version.js';
import { execIn, TestServer, waitFor, type TestResponse } from '../../testing/harness.js';
import { ComputeMachinesResponse } from './schemas.js';
import { SEED_004_RESULT } from './seed-004.fixture.js';

type Result = Record<string, any>;

/**
 * Keys a result has beyond the seed's example: libcontainer fields the example left out
 * only because Go's omitempty dropped their zero values there (docs/compute-api.md).
 */
const EXTRA_KEYS = [
  /^stats\.CgroupStats\.cpu_stats\.cpu_usage\.percpu_usage$/,
  /^stats\.CgroupStats\.cpu_stats\.throttling_data\.(throttled_periods|throttled_time)$/,
  /^stats\.CgroupStats\.cpuset_stats\.(cpus|mems)$/,
  /^stats\.CgroupStats\.memory_stats\.(kernel_tcp_usage|kernel_usage|swap_only_usage|swap_usage)\.(usage|max_usage)$/,
  /^stats\.CgroupStats\.memory_stats\.page_usage_by_numa\.(hierarchical\.)?(total|file|anon|unevictable)\.(total|nodes)$/,
];

/** Assert `ours` has every key of `seed` with a value of the same JSON type, and no keys but documented extras. */
function assertSeedShape(ours: unknown, seed: unknown, path: string): void {
  if (seed === null) {
    // null in the seed: IntelRdtStats (null here too) and the per-CPU splits (lists on this host).
    assert.ok(ours === null || Array.isArray(ours), `${path}: null or a list, got ${JSON.stringify(ours)}`);
    return;
  }
  if (Array.isArray(seed)) {
    assert.ok(Array.isArray(ours), `${path}: a list`);
    const seedKeys = new Set(seed.flatMap((e) => (e && typeof e === 'object' ? Object.keys(e) : [])));
    const example = Object.fromEntries([...seedKeys].map((k) => [k, seed.find((e) => e[k] !== undefined)[k]]));
    for (const [i, e] of (ours as unknown[]).entries()) if (seedKeys.size) assertSeedShape(e, example, `${path}[${i}]`);
    return;
  }
  if (typeof seed === 'object') {
    assert.ok(ours !== null && typeof ours === 'object' && !Array.isArray(ours), `${path}: an object`);
    const o = ours as Record<string, unknown>;
    const s = seed as Record<string, unknown>;
    if (path === 'annotations') {
      // A string map: the seed's keys that Hangar always sets; service.* come from metadata when given.
      assert.ok(Object.values(o).every((v) => typeof v === 'string'), 'annotations are strings');
      for (const k of Object.keys(s).filter((k) => !k.startsWith('service.'))) assert.ok(k in o, `annotations.${k}: missing`);
      return;
    }
    for (const k of Object.keys(s)) {
      const at = path ? `${path}.${k}` : k;
      assert.ok(k in o, `${at}: missing`);
      assertSeedShape(o[k], s[k], at);
    }
    for (const k of Object.keys(o).filter((k) => !(k in s))) {
      const at = path ? `${path}.${k}` : k;
      assert.ok(EXTRA_KEYS.some((re) => re.test(at)), `${at}: not in the seed and not a documented extra`);
    }
    return;
  }
  assert.equal(typeof ours, typeof seed, `${path}: ${typeof seed}`);
}

describe('compute machines API (seed 004) on real machines', () => {
  let t: TestServer;
  let teamA: string;
  let keyA: string;
  let keyB: string;
  /** Team A: labelled (namespace, service, the seed's service.* keys), 256 MiB and 2 vCPUs. */
  let web: string;
  /** Team A: no metadata, defaults. */
  let plain: string;
  /** Team A: template `node`, whose manifest says runtime "nodejs". */
  let node: string;
  let paused: string;
  /** Running in the store, but its init was killed from the host. */
  let stopped: string;
  let other: string;

  const list = (query = '', key = keyA): Promise<TestResponse> => t.request('GET', `/compute/machines${query}`, { key });
  const ids = async (query: string, key = keyA): Promise<string[]> => {
    const r = await list(query, key);
    assert.equal(r.status, 200, r.text);
    return (r.body.body.results as Result[]).map((m) => m.id as string).sort();
  };
  const one = async (id: string): Promise<Result> => {
    const r = await list(`?machine=${id}`);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.body.results_total, 1);
    return r.body.body.results[0];
  };
  const create = async (key: string, body: Record<string, unknown>): Promise<string> => {
    const r = await t.request('POST', '/v1/machines', { key, body });
    assert.equal(r.status, 201, r.text);
    return r.body.id as string;
  };

  before(async () => {
    t = await TestServer.start();
    // A second template, the base rootfs under another runtime label, so runtime filters have two values.
    const templates = t.server.settings.templatesDir;
    await cp(join(templates, 'base'), join(templates, 'node'), { recursive: true, verbatimSymlinks: true });
    const manifest = JSON.parse(await readFile(join(templates, 'base', 'template.json'), 'utf8'));
    await writeFile(join(templates, 'node', 'template.json'), JSON.stringify({ ...manifest, name: 'node', runtime: 'nodejs' }));

    ({ teamId: teamA, key: keyA } = await t.newTeamKey('a'));
    ({ key: keyB } = await t.newTeamKey('b'));
    web = await create(keyA, {
      config: { memory_mb: 256, vcpus: 2 },
      metadata: { namespace: 'shop', service: 'web', 'service.version': '5116', 'service.handler': '/main.main', 'service.auto': true },
    });
    plain = await create(keyA, {});
    node = await create(keyA, { template: 'node' });
    paused = await create(keyA, {});
    const p = await t.request('POST', `/v1/machines/${paused}/pause`, { key: keyA });
    assert.equal(p.status, 200, p.text);
    stopped = await create(keyA, {});
    await run(t.server.settings.runcPath, ['--root', t.server.settings.runcStateDir, 'kill', stopped, 'KILL']);
    other = await create(keyB, { metadata: { namespace: 'shop', service: 'web' } });
  });
  after(async () => {
    await t.dispose();
  });

  it('answers {body: {results, results_total}} that the strict schema accepts, with every key of the seed', async () => {
    const r = await list();
    assert.equal(r.status, 200, r.text);
    const parsed = ComputeMachinesResponse.safeParse(r.body);
    assert.ok(parsed.success, JSON.stringify(parsed.error?.issues.slice(0, 5)));
    assert.equal(r.body.body.results_total, r.body.body.results.length);
    assert.equal(r.body.body.results_total, 5);
    for (const m of r.body.body.results as Result[]) assertSeedShape(m, SEED_004_RESULT, '');
    // The labelled machine carries every annotation key of the seed, service.* included.
    const labelled = (r.body.body.results as Result[]).find((m) => m.id === web)!;
    assert.deepEqual(Object.keys(labelled.annotations).sort(), Object.keys((SEED_004_RESULT as Result).annotations).sort());
    // Newest first, like the native listing.
    const created = (r.body.body.results as Result[]).map((m) => Date.parse(m.created));
    assert.deepEqual(created, [...created].sort((a, b) => b - a));
  });

  it('fills each field from the machine, its template, its team and the host', async () => {
    const m = await one(web);
    const native = (await t.request('GET', `/v1/machines/${web}`, { key: keyA })).body;
    const paths = layerPaths(t.server.settings.machinesDir, web);
    const state = await t.server.runtime.inspect(web);
    const runtimeInfo = await t.server.runtime.info();
    assert.equal(m.hydra_machine_version, VERSION);
    assert.equal(m.id, web);
    assert.equal(m.pid, state?.pid);
    assert.ok(await stat(`/proc/${m.pid}`), 'pid is a live host process');
    assert.equal(m.status, 'running');
    assert.equal(m.runtime, 'runc');
    assert.equal(m.runtime_version, runtimeInfo.version);
    assert.equal(m.memory, '256.00 MB');
    assert.equal(m.rootfs, paths.rootfs);
    assert.ok((await stat(join(m.rootfs, 'bin/busybox'))).isFile(), 'rootfs is the machine\'s root filesystem');
    assert.equal(m.created, native.created_at);
    assert.equal(m.owner, teamA);
    assert.equal(m.type, 'Compute Machine');
    assert.deepEqual(m.annotations, {
      account: teamA,
      bundle: paths.bundle,
      cpu: '2',
      'hydra.node': hostname(),
      machine: web,
      mem: '256MB',
      namespace: 'shop',
      'runtime.version': runtimeInfo.version,
      service: 'web',
      'service.auto': 'true',
      'service.handler': '/main.main',
      'service.version': '5116',
    });
    const cg = m.stats.CgroupStats;
    assert.equal(cg.memory_stats.usage.limit, 256 * 1024 * 1024, 'the machine\'s real memory limit');
    assert.equal(cg.pids_stats.limit, t.server.settings.pidsLimit);
    assert.ok(cg.pids_stats.current >= 1);
    assert.ok(cg.cpu_stats.cpu_usage.total_usage > 0);
    assert.equal(cg.memory_stats.use_hierarchy, true);
    assert.equal(m.stats.IntelRdtStats, null);
    assert.deepEqual(m.stats.Interfaces.map((i: Result) => i.Name), ['lo', 'eth0'], 'loopback and the machine\'s own eth0');

    const defaults = await one(plain);
    assert.equal(defaults.memory, '512.00 MB');
    assert.equal(defaults.annotations.namespace, teamA, 'namespace defaults to the team');
    assert.equal(defaults.annotations.service, 'base', 'service defaults to the template');
    assert.equal((await one(node)).runtime, 'nodejs');
  });

  it('shows paused and stopped machines with pid 0 and a zero sample', async () => {
    for (const [id, status] of [[paused, 'paused'], [stopped, 'stopped']] as const) {
      const m = await one(id);
      assert.equal(m.status, status);
      assert.equal(m.pid, 0);
      assert.equal(m.stats.CgroupStats.cpu_stats.cpu_usage.total_usage, 0);
      assert.equal(m.stats.CgroupStats.memory_stats.usage.usage, 0);
      assert.equal(m.stats.CgroupStats.pids_stats.current, 0);
      assert.deepEqual(m.stats.Interfaces, []);
    }
  });

  it('filters by machine, status, runtime, namespace and service', async () => {
    const all = [web, plain, node, paused, stopped].sort();
    assert.deepEqual(await ids(''), all);
    assert.deepEqual(await ids('?status=*'), all);
    assert.deepEqual(await ids('?status=running'), [web, plain, node].sort());
    assert.deepEqual(await ids('?status=paused'), [paused]);
    assert.deepEqual(await ids('?status=stopped'), [stopped]);
    assert.deepEqual(await ids(`?machine=${plain}`), [plain]);
    assert.deepEqual(await ids('?machine=mch_nosuchmachine'), []);
    assert.deepEqual(await ids('?runtime=nodejs'), [node]);
    assert.deepEqual(await ids('?runtime=runc'), [web, plain, paused, stopped].sort());
    assert.deepEqual(await ids('?namespace=shop'), [web]);
    assert.deepEqual(await ids(`?namespace=${teamA}`), [plain, node, paused, stopped].sort());
    assert.deepEqual(await ids('?service=web'), [web]);
    assert.deepEqual(await ids('?service=node'), [node]);
    assert.deepEqual(await ids('?service=base'), [plain, paused, stopped].sort());
    assert.deepEqual(await ids('?status=running&runtime=runc'), [web, plain].sort());
    assert.deepEqual(await ids('?status=paused&runtime=nodejs'), []);
  });

  it('never shows another team\'s machines, not even by id', async () => {
    assert.deepEqual(await ids('', keyB), [other]);
    assert.deepEqual(await ids(`?machine=${other}`), []);
    assert.deepEqual(await ids(`?machine=${web}`, keyB), []);
    assert.deepEqual(await ids('?namespace=shop&service=web', keyB), [other]);
    assert.deepEqual(await ids('?namespace=shop&service=web'), [web]);
  });

  it('cpu usage and throttling periods grow while the machine burns CPU', async () => {
    const before = (await one(plain)).stats.CgroupStats.cpu_stats;
    const burn = await execIn(t.server, plain, ['sh', '-c', 'i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done']);
    assert.equal(burn.code, 0, burn.out);
    const after = (await one(plain)).stats.CgroupStats.cpu_stats;
    const grew = after.cpu_usage.total_usage - before.cpu_usage.total_usage;
    assert.ok(grew >= 100_000_000, `total_usage grew by ${grew} ns, expected at least 100 ms`);
    const split = after.cpu_usage.usage_in_usermode + after.cpu_usage.usage_in_kernelmode - before.cpu_usage.usage_in_usermode - before.cpu_usage.usage_in_kernelmode;
    assert.ok(split > 0, 'user + kernel time grew');
    assert.ok(after.throttling_data.periods > before.throttling_data.periods, 'quota periods elapsed');
  });

  it('memory usage grows by what the machine allocates', async () => {
    const before = (await one(plain)).stats.CgroupStats.memory_stats;
    const dd = await execIn(t.server, plain, ['dd', 'if=/dev/zero', 'of=/dev/shm/x', 'bs=1M', 'count=20']);
    assert.equal(dd.code, 0, dd.out);
    const after = (await one(plain)).stats.CgroupStats.memory_stats;
    const mib = 1024 * 1024;
    assert.ok(after.usage.usage - before.usage.usage >= 19 * mib, `usage grew by ${after.usage.usage - before.usage.usage}`);
    assert.ok(after.stats.shmem - before.stats.shmem >= 20 * mib, 'shmem counts the tmpfs file');
    assert.ok(after.usage.max_usage >= after.usage.usage);
    await execIn(t.server, plain, ['rm', '/dev/shm/x']);
    const freed = (await one(plain)).stats.CgroupStats.memory_stats;
    assert.ok(freed.stats.shmem <= before.stats.shmem, 'shmem drops when the file goes');
  });

  it('pids current counts background processes', async () => {
    const current = async () => (await one(plain)).stats.CgroupStats.pids_stats.current as number;
    const before = await current();
    const started = await execIn(t.server, plain, ['sh', '-c', 'for i in 1 2 3; do sleep 1000 > /dev/null 2>&1 & done']);
    assert.equal(started.code, 0, started.out);
    assert.equal(await current(), before + 3);
    await execIn(t.server, plain, ['killall', 'sleep']);
    // Killed processes count until init reaps them.
    await waitFor(async () => (await current()) === before);
  });

  it('interface counters on lo grow with traffic inside the machine', async () => {
    const lo = async (): Promise<Result> => (await one(web)).stats.Interfaces.find((i: Result) => i.Name === 'lo');
    const before = await lo();
    // busybox ping needs CAP_NET_RAW, which machines do not have: an HTTP round trip on loopback instead.
    const http = await execIn(t.server, web, [
      'sh', '-c',
      'mkdir -p /tmp/www && echo hello > /tmp/www/index.html && httpd -p 127.0.0.1:8080 -h /tmp/www && wget -q -O - http://127.0.0.1:8080/index.html',
    ]);
    assert.equal(http.code, 0, http.out);
    assert.equal(http.out.trim(), 'hello');
    const after = await lo();
    assert.ok(after.RxBytes > before.RxBytes && after.TxBytes > before.TxBytes, JSON.stringify({ before, after }));
    assert.ok(after.RxPackets >= before.RxPackets + 4, 'a TCP handshake, request, response and close');
    assert.equal(after.RxBytes, after.TxBytes, 'on loopback every byte sent is received');
  });

  it('rejects bad filters with VALIDATION_FAILED naming them', async () => {
    for (const [query, field] of [
      ['?status=bogus', 'query.status'],
      ['?status=RUNNING', 'query.status'],
      ['?status=running&status=paused', 'query.status'],
      ['?machine=', 'query.machine'],
      ['?state=running', 'query.state'],
    ] as const) {
      const r = await list(query);
      assert.equal(r.status, 400, `${query}: ${r.text}`);
      assert.equal(r.body.code, 'VALIDATION_FAILED');
      assert.ok(r.body.details.fields.some((f: { field: string }) => f.field === field), `${query}: ${r.text}`);
    }
    const status = await list('?status=nope');
    assert.match(status.body.message, /running, paused, stopped, \*/);
  });

  it('needs an API key', async () => {
    const r = await t.request('GET', '/compute/machines', { key: null });
    assert.equal(r.status, 401);
    assert.equal(r.body.code, 'UNAUTHORIZED');
  });
});
