import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import { boundedLoop, type LoopOutcome } from './bounded-loop.js';
import { inClientWorker, type ClientTarget } from './client-worker.js';
import type { BenchInstance } from './hangar-instance.js';

const MIB = 1024 * 1024;

/** One file size to measure, and how many upload+download pairs to time. */
export interface FilesCase {
  mib: number;
  count: number;
}

/** What `measureFiles` measures. */
export interface FilesPlan {
  cases: FilesCase[];
  /** Wall time per case after which no new pair starts. */
  budgetMs: number;
  /** The machine's disk; an overwrite briefly holds the old file and the new one. @default 512 */
  diskMb: number;
}

/** 1 MiB and 100 MiB files, each uploaded then downloaded (and checked) several times. */
export const DEFAULT_FILES_PLAN: FilesPlan = {
  cases: [
    { mib: 1, count: 20 },
    { mib: 100, count: 5 },
  ],
  budgetMs: 120_000,
  diskMb: 512,
};

/** Throughput samples of one size, in MB/s (10^6 bytes per second, from sending to the last byte). */
export interface FilesCaseSamples {
  mib: number;
  uploadMBps: number[];
  downloadMBps: number[];
  loop: LoopOutcome;
}

/** Upload and download throughput of the files API, per file size. */
export interface FilesSamples {
  cases: FilesCaseSamples[];
  /**
   * The floor: the same client and loops against a bare node:http server on loopback that
   * keeps the bytes in memory (no machine, agent, store or Fastify), per file size.
   */
  floor: FilesCaseSamples[];
}

/** PUT `body` to a machine's file; resolves with the seconds taken once the answer arrived. */
function upload(inst: ClientTarget, agent: http.Agent, id: string, path: string, body: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const req = http.request(
      `${inst.url}/v1/machines/${id}/files?path=${encodeURIComponent(path)}`,
      {
        method: 'PUT',
        agent,
        headers: { authorization: `Bearer ${inst.apiKey}`, 'content-type': 'application/octet-stream', 'content-length': String(body.length) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const seconds = (performance.now() - started) / 1000;
          if (res.statusCode !== 200) reject(new Error(`PUT ${path}: ${res.statusCode}: ${Buffer.concat(chunks).toString('utf8').slice(0, 300)}`));
          else resolve(seconds);
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** GET a machine's file, hashing it as it comes; resolves with the seconds taken and the sha256. */
function download(inst: ClientTarget, agent: http.Agent, id: string, path: string): Promise<{ seconds: number; bytes: number; sha256: string }> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const req = http.request(
      `${inst.url}/v1/machines/${id}/files?path=${encodeURIComponent(path)}`,
      { method: 'GET', agent, headers: { authorization: `Bearer ${inst.apiKey}` } },
      (res) => {
        const hash = createHash('sha256');
        let bytes = 0;
        res.on('data', (c: Buffer) => {
          bytes += c.length;
          hash.update(c);
        });
        res.on('error', reject);
        res.on('end', () => {
          const seconds = (performance.now() - started) / 1000;
          if (res.statusCode !== 200) reject(new Error(`GET ${path}: ${res.statusCode}`));
          else resolve({ seconds, bytes, sha256: hash.digest('hex') });
        });
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/**
 * Upload then download files of each size through `PUT`/`GET /v1/machines/{id}/files`,
 * one transfer at a time on one kept-alive connection from a client in a worker thread
 * (client-worker.ts), into a fresh machine; every
 * download is checked against what was uploaded.
 */
export async function measureFiles(inst: BenchInstance, signal: AbortSignal, plan: FilesPlan = DEFAULT_FILES_PLAN): Promise<FilesSamples> {
  const machine = await inst.client.expect<{ id: string }>(201, 'POST', '/v1/machines', { config: { disk_mb: plan.diskMb } });
  const target = { url: inst.server.url, apiKey: inst.apiKey, machineId: machine.body.id };
  let cases: FilesCaseSamples[];
  try {
    cases = (await inClientWorker('files', target, plan, signal)).cases;
  } finally {
    await inst.client.expect(200, 'DELETE', `/v1/machines/${target.machineId}`).catch(() => undefined);
  }
  return { cases, floor: await measureFloor(plan, signal) };
}

/** The same loops against a bare node:http server in this thread holding the files in memory. */
async function measureFloor(plan: FilesPlan, signal: AbortSignal): Promise<FilesCaseSamples[]> {
  const files = new Map<string, Buffer>();
  const server = http.createServer((req, res) => {
    const key = req.url ?? '';
    if (req.method === 'PUT') {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        files.set(key, Buffer.concat(chunks));
        res.setHeader('content-type', 'application/json');
        res.end('{}');
      });
      return;
    }
    const body = files.get(key);
    res.statusCode = body ? 200 : 404;
    res.setHeader('content-type', 'application/octet-stream');
    res.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const { port } = server.address() as { port: number };
    return (await inClientWorker('files', { url: `http://127.0.0.1:${port}`, apiKey: 'floor', machineId: 'floor' }, plan, signal)).cases;
  } finally {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/** The loops of `measureFiles`, as the client worker (client-worker.ts) runs them. */
export async function filesLoops(inst: ClientTarget, plan: FilesPlan, signal: AbortSignal): Promise<FilesSamples> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const id = inst.machineId;
  try {
    const cases: FilesCaseSamples[] = [];
    for (const c of plan.cases) {
      const body = randomBytes(c.mib * MIB);
      const want = createHash('sha256').update(body).digest('hex');
      const path = `/root/bench-${c.mib}mib.bin`;
      const uploadMBps: number[] = [];
      const downloadMBps: number[] = [];
      const loop = await boundedLoop({ count: c.count, budgetMs: plan.budgetMs, signal }, async () => {
        uploadMBps.push(body.length / 1e6 / (await upload(inst, agent, id, path, body)));
        const got = await download(inst, agent, id, path);
        if (got.bytes !== body.length || got.sha256 !== want) throw new Error(`GET ${path}: the bytes differ from those uploaded`);
        downloadMBps.push(got.bytes / 1e6 / got.seconds);
      });
      cases.push({ mib: c.mib, uploadMBps, downloadMBps, loop });
    }
    return { cases, floor: [] };
  } finally {
    agent.destroy();
  }
}
