import http from 'node:http';
import { boundedLoop, type LoopOutcome } from './bounded-loop.js';
import { inClientWorker, type ClientTarget } from './client-worker.js';
import type { BenchInstance } from './hangar-instance.js';

/** What the in-machine agent's small calls measured (issue 11's rows beside exec `true`). */
export interface AgentOpsSamples {
  /** From sending `POST …/exec/stream {"cmd": ["echo", "hi"]}` to the first `stdout` event's bytes. */
  firstByteMs: number[];
  /** One 4 KiB `PUT …/files` then `GET …/files` of it, each pair on one keep-alive connection. */
  smallPairMs: number[];
  /** `GET …/files/list` of a directory of `listEntries` entries. */
  listMs: number[];
  listEntries: number;
  loops: { firstByte: LoopOutcome; small: LoopOutcome; list: LoopOutcome };
}

/** Counts and time budgets of `measureAgentOps`. */
export interface AgentOpsPlan {
  firstByte: number;
  smallPairs: number;
  list: number;
  listEntries: number;
  budgetMs: number;
}

export const DEFAULT_AGENT_OPS_PLAN: AgentOpsPlan = { firstByte: 100, smallPairs: 500, list: 50, listEntries: 1_000, budgetMs: 60_000 };

function call(inst: ClientTarget, agent: http.Agent, method: string, path: string, body?: Buffer | string, firstByte = false): Promise<{ ms: number; status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const headers: Record<string, string> = { authorization: `Bearer ${inst.apiKey}` };
    if (body !== undefined) {
      headers['content-type'] = typeof body === 'string' ? 'application/json' : 'application/octet-stream';
      headers['content-length'] = String(Buffer.byteLength(body));
    }
    const req = http.request(`${inst.url}${path}`, { method, agent, headers }, (res) => {
      const chunks: Buffer[] = [];
      let firstAt: number | null = null;
      res.on('data', (c: Buffer) => {
        chunks.push(c);
        // The first stdout event's bytes, not the headers (sent when the command starts).
        if (firstByte && firstAt === null && Buffer.concat(chunks).toString('utf8').includes('event: stdout')) firstAt = performance.now();
      });
      res.on('error', reject);
      res.on('end', () => resolve({ ms: (firstAt ?? performance.now()) - started, status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function ok(p: Promise<{ ms: number; status: number; text: string }>, what: string): Promise<{ ms: number; text: string }> {
  const r = await p;
  if (r.status !== 200) throw new Error(`${what}: ${r.status} ${r.text.slice(0, 300)}`);
  return r;
}

/**
 * In one fresh machine: time to the first stdout byte of a streamed `echo hi`, 4 KiB
 * write-then-read pairs back to back, and listing a directory of 1,000 files. Every
 * answer is checked (the read returns the bytes written, the listing has every entry).
 * The client runs in a worker thread (client-worker.ts).
 */
export async function measureAgentOps(inst: BenchInstance, plan: AgentOpsPlan, signal: AbortSignal): Promise<AgentOpsSamples> {
  const machine = await inst.client.expect<{ id: string }>(201, 'POST', '/v1/machines', {});
  const target = { url: inst.server.url, apiKey: inst.apiKey, machineId: machine.body.id };
  try {
    return await inClientWorker('agentOps', target, plan, signal);
  } finally {
    await inst.client.expect(200, 'DELETE', `/v1/machines/${target.machineId}`).catch(() => undefined);
  }
}

/** The loops of `measureAgentOps`, as the client worker (client-worker.ts) runs them. */
export async function agentOpsLoops(inst: ClientTarget, plan: AgentOpsPlan, signal: AbortSignal): Promise<AgentOpsSamples> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const id = inst.machineId;
  try {
    const bounds = (count: number) => ({ count, budgetMs: plan.budgetMs, signal });
    const stream = (): Promise<{ ms: number; text: string }> =>
      ok(call(inst, agent, 'POST', `/v1/machines/${id}/exec/stream`, JSON.stringify({ cmd: ['echo', 'hi'] }), true), 'exec stream');
    for (let i = 0; i < 5; i++) await stream();
    const firstByteMs: number[] = [];
    const firstByte = await boundedLoop(bounds(plan.firstByte), async () => {
      const r = await stream();
      if (!r.text.includes('"hi\\n"')) throw new Error(`exec stream answered ${r.text.slice(0, 200)}`);
      firstByteMs.push(r.ms);
    });

    const payload = Buffer.alloc(4096, 7);
    const file = `/v1/machines/${id}/files?path=${encodeURIComponent('/root/small.bin')}`;
    const pair = async (): Promise<number> => {
      const w = await ok(call(inst, agent, 'PUT', file, payload), 'write 4 KiB');
      const r = await ok(call(inst, agent, 'GET', file), 'read 4 KiB');
      if (r.text.length !== payload.length) throw new Error(`read ${r.text.length} bytes, wrote ${payload.length}`);
      return w.ms + r.ms;
    };
    for (let i = 0; i < 10; i++) await pair();
    const smallPairMs: number[] = [];
    const small = await boundedLoop(bounds(plan.smallPairs), async () => {
      smallPairMs.push(await pair());
    });

    await ok(call(inst, agent, 'POST', `/v1/machines/${id}/exec`, JSON.stringify({ cmd: `mkdir -p /root/many && cd /root/many && i=0; while [ $i -lt ${plan.listEntries} ]; do : > f$i; i=$((i+1)); done` })), 'fill the directory');
    const list = `/v1/machines/${id}/files/list?path=${encodeURIComponent('/root/many')}`;
    for (let i = 0; i < 3; i++) await ok(call(inst, agent, 'GET', list), 'list');
    const listMs: number[] = [];
    const listed = await boundedLoop(bounds(plan.list), async () => {
      const r = await ok(call(inst, agent, 'GET', list), 'list');
      const n = (JSON.parse(r.text) as { entries: unknown[] }).entries.length;
      if (n !== plan.listEntries) throw new Error(`listed ${n} entries, ${plan.listEntries} expected`);
      listMs.push(r.ms);
    });
    return { firstByteMs, smallPairMs, listMs, listEntries: plan.listEntries, loops: { firstByte, small, list: listed } };
  } finally {
    agent.destroy();
  }
}
