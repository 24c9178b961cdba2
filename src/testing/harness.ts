/**
 * Test harness: a real Hangar server (real runc, real SQLite file) on a fresh data
 * dir and a loopback port, and checks that nothing is left on the host afterwards.
 * With `HANGAR_TEST_STORE=postgres` in the environment every test server keeps its state in
 * a fresh database of a throwaway PostgreSQL server instead (one per test process).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cidrsOverlap, parseCidr, type Cidr } from '../domain/network.js';
import { run } from '../runtime/runc/command.js';
import { runcCli, userNamespaceCli } from '../runtime/runc/oci-cli.js';
import { readUidBase } from '../runtime/user-namespace.js';
import { startServer, type HangarServer, type StartOptions } from '../server.js';
import { loadSettings } from '../settings.js';
import { leftovers } from './host-leftovers.js';
import { startPostgres, type PostgresServer } from './postgres-server.js';

// Kept importable from here: tests written against the harness use them.
export { leftovers, networkLeftovers } from './host-leftovers.js';

export const ADMIN_KEY = 'hangar-test-admin-key-0123456789';

/** True when a route of the host already covers (part of) `subnet`. */
export async function subnetTaken(subnet: Cidr): Promise<boolean> {
  const routes = JSON.parse(await run('ip', ['-j', '-4', 'route', 'show', 'table', 'all'])) as Array<{ dst?: string; type?: string }>;
  return routes.some((r) => {
    if (!r.dst || r.dst === 'default' || (r.type && r.type !== 'unicast')) return false;
    const parsed = parseCidr(r.dst.includes('/') ? r.dst : `${r.dst}/32`);
    return 'cidr' in parsed && cidrsOverlap(parsed.cidr, subnet);
  });
}

let testPostgres: Promise<PostgresServer> | undefined;

/** A fresh database on this process's throwaway PostgreSQL server (started at the first call, stopped at exit). */
async function freshPostgresDatabase(): Promise<string> {
  testPostgres ??= startPostgres();
  const server = await testPostgres;
  return server.url(await server.createDatabase());
}

/** A JSON response as tests see it. */
export interface TestResponse {
  status: number;
  body: any;
  text: string;
  headers: Headers;
}

/** Options for a test server. */
export interface TestServerOptions extends StartOptions {
  /** Extra HANGAR_* settings. */
  env?: Record<string, string>;
  /** Reuse a data dir (to test restarts). */
  dataDir?: string;
}

/** A running test server plus helpers. */
export class TestServer {
  private constructor(
    public server: HangarServer,
    readonly dataDir: string,
    private readonly options: TestServerOptions,
  ) {}

  /** Start a server on a fresh (or given) data dir, listening on 127.0.0.1 with a random port. */
  static async start(options: TestServerOptions = {}): Promise<TestServer> {
    if (process.env.HANGAR_TEST_STORE === 'postgres' && options.env?.HANGAR_DATABASE_URL === undefined) {
      // Kept in the options, so a restart finds the same database.
      options = { ...options, env: { ...options.env, HANGAR_DATABASE_URL: await freshPostgresDatabase() } };
    }
    const settingsOf = (dataDir: string) =>
      loadSettings({
        HANGAR_DATA_DIR: dataDir,
        HANGAR_LISTEN: '127.0.0.1:0',
        HANGAR_BOOTSTRAP_KEY: ADMIN_KEY,
        HANGAR_LOG_LEVEL: 'silent',
        HANGAR_SWEEP_INTERVAL_MS: '50',
        // HANGAR_TEST_USER_NAMESPACES=off (or on) runs a suite's servers with that setting (default: the server's, on).
        ...(process.env.HANGAR_TEST_USER_NAMESPACES === 'on' || process.env.HANGAR_TEST_USER_NAMESPACES === 'off'
          ? { HANGAR_USER_NAMESPACES: process.env.HANGAR_TEST_USER_NAMESPACES }
          : {}),
        ...options.env,
      });
    let dataDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), 'hangar-test-')));
    let settings = settingsOf(dataDir);
    // A fresh data dir whose default subnet (one of 4,096, from its hash) another server on
    // the host already routes would be refused at its first create: take another data dir.
    for (let attempt = 0; options.dataDir === undefined && attempt < 8 && (await subnetTaken(settings.subnet)); attempt++) {
      await rm(dataDir, { recursive: true, force: true });
      dataDir = await mkdtemp(join(tmpdir(), 'hangar-test-'));
      settings = settingsOf(dataDir);
    }
    const server = await startServer(settings, options);
    return new TestServer(server, dataDir, options);
  }

  get url(): string {
    return this.server.url;
  }

  /** Call the API. `key` defaults to the admin key; pass null for no Authorization header. */
  async request(
    method: string,
    path: string,
    opts: { body?: unknown; rawBody?: string; key?: string | null; headers?: Record<string, string> } = {},
  ): Promise<TestResponse> {
    const headers: Record<string, string> = { ...opts.headers };
    const key = opts.key === undefined ? ADMIN_KEY : opts.key;
    if (key !== null) headers.authorization = `Bearer ${key}`;
    let body: string | undefined;
    if (opts.rawBody !== undefined) body = opts.rawBody;
    else if (opts.body !== undefined) {
      body = JSON.stringify(opts.body);
      headers['content-type'] ??= 'application/json';
    }
    const res = await fetch(`${this.url}${path}`, { method, headers, body });
    const text = await res.text();
    let parsed: unknown = undefined;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    return { status: res.status, body: parsed, text, headers: res.headers };
  }

  /** Create a team and a key for it; returns the key's secret. */
  async newTeamKey(name = 'team'): Promise<{ teamId: string; key: string }> {
    const t = await this.request('POST', '/v1/admin/teams', { body: { name } });
    const k = await this.request('POST', `/v1/admin/teams/${t.body.id}/keys`, { body: { name: 'k' } });
    return { teamId: t.body.id, key: k.body.key };
  }

  /**
   * Poll a machine event (Paperspace-style `GET /machine-events/{id}`, as `key`) until it
   * is finished (done, error or cancelled), and return it.
   */
  async finishedEvent(eventId: string, key: string | undefined = undefined, timeoutMs = 120_000): Promise<any> {
    return waitFor(async () => {
      const r = await this.request('GET', `${this.server.settings.paperspace.basePath}/machine-events/${eventId}`, { key });
      if (r.status !== 200) throw new Error(`GET machine event ${eventId}: ${r.status} ${r.text}`);
      return ['done', 'error', 'cancelled'].includes(r.body.state) ? r.body : null;
    }, timeoutMs);
  }

  /** Stop the server (machines keep running) and start a new one on the same data dir. */
  async restart(): Promise<void> {
    await this.server.close();
    const next = await TestServer.start({ ...this.options, dataDir: this.dataDir });
    this.server = next.server;
  }

  /**
   * Destroy every machine, stop the server, delete the data dir, and assert nothing is left.
   * `beforeCheck` removes what the test itself made on the host (after the server stopped, before the check).
   */
  async dispose(options: { beforeCheck?: () => Promise<void> } = {}): Promise<void> {
    await this.server.pools.stop();
    // Background operations (Paperspace-style) hold machine locks: let them finish first.
    await this.server.operations.drain();
    await this.server.machines.destroyAll();
    const prefix = this.server.settings.instancePrefix;
    await this.server.close();
    await rm(this.dataDir, { recursive: true, force: true });
    await options.beforeCheck?.();
    const left = await leftovers(this.dataDir, prefix);
    if (left.length) throw new Error(`test left resources on the host: ${left.join('; ')}`);
  }
}

/** Run a command inside a machine with the real `runc exec`, bypassing the API (no activity recorded). */
export async function execIn(server: HangarServer, id: string, argv: string[], timeoutMs = 30_000): Promise<{ code: number; out: string }> {
  // A user-namespaced machine's spec names no network namespace: runc is run inside it, as the runtime does.
  const plain = runcCli(server.settings.runcPath, server.settings.runcStateDir);
  const userns = (await readUidBase(join(server.settings.machinesDir, id))) !== null;
  const oci = userns ? userNamespaceCli(plain, `/run/netns/${server.settings.instancePrefix}-${id}`) : plain;
  try {
    const out = await run(oci.binary, [...oci.globalArgs, 'exec', id, ...argv], timeoutMs);
    return { code: 0, out };
  } catch (err) {
    const e = err as { exitCode?: number | null; stderr?: string };
    return { code: e.exitCode ?? -1, out: e.stderr ?? String(err) };
  }
}

/** Poll until `fn` returns a truthy value or the time is up. */
export async function waitFor<T>(fn: () => Promise<T>, timeoutMs = 10_000, everyMs = 50): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error('waitFor: timed out');
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
