import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, type HangarServer } from '../src/server.js';
import { loadSettings } from '../src/settings.js';
import { leftovers } from '../src/testing/harness.js';
import { ApiClient } from './http-client.js';

/** The bootstrap admin key of every bench server (warm pools are admin-only). */
export const BENCH_ADMIN_KEY = 'hangar-bench-admin-key-0123456789';

/** A real Hangar server on its own fresh data dir, with a team key to call it with. */
export interface BenchInstance {
  label: string;
  dataDir: string;
  server: HangarServer;
  teamId: string;
  /** The bench team's API key. */
  apiKey: string;
  /** Calls as the bench team (one kept-alive connection). */
  client: ApiClient;
}

async function createTeam(url: string): Promise<{ teamId: string; key: string }> {
  const admin = new ApiClient(url, BENCH_ADMIN_KEY);
  try {
    const team = await admin.expect<{ id: string }>(201, 'POST', '/v1/admin/teams', { name: 'bench' });
    const key = await admin.expect<{ key: string }>(201, 'POST', `/v1/admin/teams/${team.body.id}/keys`, { name: 'bench' });
    return { teamId: team.body.id, key: key.body.key };
  } finally {
    admin.close();
  }
}

/** Start a server on a new temporary data dir listening on a random loopback port; `env` adds settings (HANGAR_*). */
export async function startInstance(label: string, env: Record<string, string> = {}): Promise<BenchInstance> {
  const dataDir = await mkdtemp(join(tmpdir(), `hangar-bench-${label}-`));
  let server: HangarServer;
  try {
    server = await startServer(
      loadSettings({
        HANGAR_DATA_DIR: dataDir,
        HANGAR_LISTEN: '127.0.0.1:0',
        HANGAR_BOOTSTRAP_KEY: BENCH_ADMIN_KEY,
        HANGAR_LOG_LEVEL: 'silent',
        ...env,
      }),
    );
  } catch (err) {
    await rm(dataDir, { recursive: true, force: true });
    throw err;
  }
  try {
    const { teamId, key } = await createTeam(server.url);
    return { label, dataDir, server, teamId, apiKey: key, client: new ApiClient(server.url, key) };
  } catch (err) {
    await server.machines.destroyAll();
    await server.close();
    await rm(dataDir, { recursive: true, force: true });
    throw err;
  }
}

/**
 * Destroy every machine, stop the server and delete its data dir (never reused, so no
 * later server re-adopts its rows). Returns the host resources still left, if any.
 */
export async function stopInstance(inst: BenchInstance): Promise<string[]> {
  const prefix = inst.server.settings.instancePrefix;
  inst.client.close();
  try {
    // A pool left behind (a failed run) must not refill while destroyAll empties the host.
    await inst.server.pools.stop();
    await inst.server.machines.destroyAll();
  } finally {
    await inst.server.close();
    await rm(inst.dataDir, { recursive: true, force: true });
  }
  return (await leftovers(inst.dataDir, prefix)).map((l) => `${inst.label}: ${l}`);
}

/** Run `fn` against a fresh instance, stopping it afterwards even when `fn` throws. */
export async function withInstance<T>(
  label: string,
  found: string[],
  fn: (inst: BenchInstance) => Promise<T>,
  env: Record<string, string> = {},
): Promise<T> {
  const inst = await startInstance(label, env);
  try {
    return await fn(inst);
  } finally {
    // A failing cleanup is reported as a leftover rather than hiding fn's own error.
    found.push(...(await stopInstance(inst).catch((err: Error) => [`${label}: cleanup failed: ${err.message}`])));
  }
}
