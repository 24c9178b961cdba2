/**
 * `node dist/bench/operations.js` (after `npm run build`, as root, with the desktop
 * template built by setup): how long the machine operations of the Paperspace-style
 * surface take on this host, on one real server. Resizes (native PATCH), stop/start with
 * and without a restore point, the live snapshot an auto snapshot takes, and a desktop
 * machine from create to its first VNC login. No peer: podman has no counterpart to these.
 * Prints a markdown table of medians and ranges.
 */
import { TestServer, waitFor, type TestResponse } from '../src/testing/harness.js';
import { rfbHandshake } from '../src/testing/rfb-client.js';

const ROUNDS = 7;
const samples = new Map<string, number[]>();

async function timed<T>(row: string, fn: () => Promise<T>): Promise<T> {
  const started = performance.now();
  const out = await fn();
  const list = samples.get(row) ?? [];
  list.push(performance.now() - started);
  samples.set(row, list);
  return out;
}

function ok(r: TestResponse, status = 200): TestResponse {
  if (r.status !== status) throw new Error(`HTTP ${r.status}: ${r.text}`);
  return r;
}

async function main(): Promise<void> {
  const t = await TestServer.start();
  try {
    const { key } = await t.newTeamKey('operations');
    const api = (method: string, path: string, body?: unknown) => t.request(method, path, { body, key });
    /** A Paperspace operation, timed until its event is done (events are polled every 50 ms). */
    const operation = async (method: string, path: string, body?: unknown): Promise<TestResponse> => {
      const r = ok(await api(method, `/paperspace/v1${path}`, body));
      const event = await t.finishedEvent(r.body.event.id, key);
      if (event.state !== 'done') throw new Error(`${path}: ${JSON.stringify(event)}`);
      return r;
    };

    const id = ok(await api('POST', '/v1/machines', { config: { vcpus: 1, memory_mb: 256, disk_mb: 64 } }), 201).body.id as string;
    const patch = (config: Record<string, number>) => async () => ok(await api('PATCH', `/v1/machines/${id}`, { config }));
    for (let i = 0; i < ROUNDS; i++) {
      await timed('resize: vCPUs 1 → 2', patch({ vcpus: 2 }));
      await timed('resize: vCPUs 2 → 1', patch({ vcpus: 1 }));
      await timed('resize: memory 256 → 384 MiB', patch({ memory_mb: 384 }));
      await timed('resize: memory 384 → 256 MiB', patch({ memory_mb: 256 }));
    }
    for (let i = 1; i <= 5; i++) await timed('resize: disk +32 MiB (CRIU checkpoint, e2fsck + resize2fs, restore)', patch({ disk_mb: 64 + 32 * i }));
    for (let i = 0; i < 5; i++) {
      await timed('stop (pause), no restore point, until its event is done', () => operation('PATCH', `/machines/${id}/stop`));
      await timed('start (resume), until its event is done', () => operation('PATCH', `/machines/${id}/start`));
    }
    await operation('PUT', `/machines/${id}`, { restorePointEnabled: true });
    for (let i = 0; i < 5; i++) {
      await timed('stop with a restore point (pause, then revert), until done', () => operation('PATCH', `/machines/${id}/stop`));
      await timed('start after a revert, until done', () => operation('PATCH', `/machines/${id}/start`));
    }
    for (let i = 0; i < 5; i++) {
      const snap = await timed('live snapshot (what an auto snapshot takes)', async () => ok(await api('POST', `/v1/machines/${id}/snapshots`), 201));
      ok(await api('DELETE', `/v1/snapshots/${snap.body.id}`), 204);
    }
    for (let i = 0; i < 3; i++) {
      const started = performance.now();
      const created = await timed('desktop machine: create, until its event is done', () =>
        operation('POST', '/machines', { name: `desktop-${i}`, machineType: 'C2', templateId: 'desktop', region: 'local', diskSize: 1 }),
      );
      const vnc = ok(await api('GET', `/paperspace/v1/machines/${created.body.data.id}/desktop`)).body.vnc;
      const login = () => rfbHandshake({ host: vnc.hostname, port: vnc.port, password: vnc.password, timeoutMs: 2_000 }).catch(() => null);
      await waitFor(async () => (await login())?.securityResult === 0, 30_000, 50);
      samples.set('desktop machine: create → first VNC login accepted', [...(samples.get('desktop machine: create → first VNC login accepted') ?? []), performance.now() - started]);
      await timed('VNC handshake to ServerInit, right after another client left', login);
      await operation('DELETE', `/machines/${created.body.data.id}`);
    }
  } finally {
    await t.dispose();
  }
  const ms = (v: number) => (v < 10 ? v.toFixed(1) : String(Math.round(v)));
  console.log('| what | p50 ms | min–max ms | n |\n| --- | --- | --- | --- |');
  for (const [row, xs] of samples) {
    const sorted = [...xs].sort((a, b) => a - b);
    console.log(`| ${row} | ${ms(sorted[Math.floor(sorted.length / 2)]!)} | ${ms(sorted[0]!)}–${ms(sorted.at(-1)!)} | ${xs.length} |`);
  }
}

await main();
