/**
 * E2B's control API (api.e2b.app, as the `e2b` SDK calls it) over the machine service:
 * a sandbox is a Hangar machine with the same id, visible on the native surface too.
 * `X-API-Key` carries a Hangar API key; errors answer `{code: <HTTP status>, message}`.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { HangarError } from '../../domain/errors.js';
import type { MachineRecord, MachineStatus } from '../../domain/machine.js';
import type { Caller } from '../../domain/team.js';
import type { CreateMachineInput } from '../../service/machine-inputs.js';
import type { ComputeMachine, ComputeService } from '../../service/compute-service.js';
import type { MachineService } from '../../service/machine-service.js';
import type { Authenticate } from '../route.js';
import { parseOrThrow } from '../validation.js';
import { ConnectBody, ForkBody, ListSandboxesQuery, NewSandboxBody, PauseBody, SandboxParams, SnapshotListQuery, TemplateParams, TimeoutBody } from './schemas.js';

/** The envd version Hangar's envd answers as: the SDK picks its features by it (closeStdin ≥ 0.5.2, octet-stream uploads ≥ 0.5.7). */
export const ENVD_VERSION = '0.5.7';
/** E2B's default sandbox timeout, seconds. */
const DEFAULT_TIMEOUT_S = 300;
/** E2B's largest list page. */
const MAX_PAGE = 100;

/** What the control routes need. */
export interface ControlRoutesOptions {
  machines: MachineService;
  compute: ComputeService;
  authenticate: Authenticate;
}

/** The window over which a metrics sample measures CPU use. */
const CPU_WINDOW_MS = 200;

/**
 * One `SandboxMetric`, measured now from the machine's cgroup (Hangar keeps no history):
 * CPU use over a short window as a percentage of the machine's CPUs, memory, and disk.
 */
async function sampleMetrics(compute: ComputeService, machines: MachineService, c: Caller, m: MachineRecord): Promise<Record<string, unknown>> {
  const sample = async (): Promise<{ at: number; stats: NonNullable<ComputeMachine['stats']> }> => {
    const [cm] = await compute.list(c, { machine: m.id });
    if (!cm?.stats) throw new HangarError('STATE_CONFLICT', `Sandbox ${m.id} is not running; it has no metrics now.`, { status: m.status });
    return { at: performance.now(), stats: cm.stats };
  };
  const a = await sample();
  await new Promise((r) => setTimeout(r, CPU_WINDOW_MS));
  const b = await sample();
  const usedNs = b.stats.cpu.totalNs - a.stats.cpu.totalNs;
  const cpuUsedPct = (usedNs / 1e6 / (b.at - a.at) / m.config.vcpus) * 100;
  const diskUsed = (await machines.diskUsage(m.id)) ?? 0;
  return {
    timestamp: new Date().toISOString(),
    timestampUnix: Math.floor(Date.now() / 1000),
    cpuCount: m.config.vcpus,
    cpuUsedPct: Math.round(Math.max(0, cpuUsedPct) * 100) / 100,
    memUsed: b.stats.memory.usage.usage,
    memTotal: m.config.memory_mb * 1024 * 1024,
    memCache: b.stats.memory.cache,
    diskUsed,
    diskTotal: m.config.disk_mb * 1024 * 1024,
  };
}

function iso(ms: number | null): string {
  return new Date(ms ?? 0).toISOString();
}

function stringMetadata(m: Record<string, unknown>): Record<string, string> {
  return Object.fromEntries(Object.entries(m).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)]));
}

/** E2B's two states; a machine still being created counts as running (the create answers once it runs). */
function stateOf(status: MachineStatus): 'running' | 'paused' {
  return status === 'paused' ? 'paused' : 'running';
}

/** The `Sandbox` answer of create and connect. */
function sandboxBody(machines: MachineService, m: MachineRecord): Record<string, unknown> {
  return {
    templateID: m.template,
    sandboxID: m.id,
    alias: m.template,
    clientID: m.teamId,
    envdVersion: ENVD_VERSION,
    envdAccessToken: machines.envdToken(m.id),
    trafficAccessToken: machines.trafficToken(m.id),
    domain: null,
  };
}

/** The `ListedSandbox` of a list and, with the token and lifecycle, the `SandboxDetail` of a get. */
function listedBody(m: MachineRecord): Record<string, unknown> {
  return {
    templateID: m.template,
    alias: m.template,
    sandboxID: m.id,
    clientID: m.teamId,
    startedAt: iso(m.startedAt ?? m.createdAt),
    endAt: iso(m.timeoutAt),
    cpuCount: m.config.vcpus,
    memoryMB: m.config.memory_mb,
    diskSizeMB: m.config.disk_mb,
    metadata: stringMetadata(m.metadata),
    state: stateOf(m.status),
    envdVersion: ENVD_VERSION,
    volumeMounts: [],
  };
}

function detailBody(machines: MachineService, m: MachineRecord): Record<string, unknown> {
  return {
    ...listedBody(m),
    envdAccessToken: machines.envdToken(m.id),
    domain: null,
    allowInternetAccess: m.outbound.mode !== 'deny',
    lifecycle: { onTimeout: m.timeoutAction === 'hibernate' ? 'pause' : 'kill', autoResume: m.autoResume },
  };
}

function unsupported(field: string, why: string): HangarError {
  return new HangarError('UNSUPPORTED_OPERATION', `${field} is not supported by Hangar's E2B API: ${why}`);
}

/** A create body as the machine service's input; what Hangar cannot honour is refused by name. */
export function createInput(body: ReturnType<typeof NewSandboxBody.parse>): CreateMachineInput {
  if (body.network !== undefined && Object.keys(body.network).length > 0) throw unsupported('network', 'per-host egress rules are not mapped; use allow_internet_access, or the native API\'s outbound policy.');
  if (body.mcp != null) throw unsupported('mcp', 'there is no MCP gateway in Hangar templates.');
  if (body.iam != null) throw unsupported('iam', 'Hangar issues no workload identity tokens.');
  if (body.volumeMounts !== undefined && body.volumeMounts.length > 0) throw unsupported('volumeMounts', 'attach Hangar volumes with the native API.');
  if (body.autoPauseMemory === false) throw unsupported('onTimeout.keepMemory: false', 'a Hangar pause always keeps memory (a CRIU snapshot).');
  const snapshot = body.templateID.startsWith('snap_');
  return {
    ...(snapshot ? { snapshotId: body.templateID } : { template: body.templateID }),
    timeoutMs: (body.timeout ?? DEFAULT_TIMEOUT_S) * 1000,
    timeoutAction: body.autoPause ? 'hibernate' : 'destroy',
    metadata: body.metadata ?? {},
    ...(body.envVars === undefined ? {} : { env: body.envVars }),
    autoResume: body.autoResume?.enabled ?? false,
    ...(body.allow_internet_access === false ? { outbound: { mode: 'deny' as const } } : {}),
  };
}

/** `key=value&…` of the SDK's metadata query (each key and value URL-encoded once more). */
export function parseMetadataQuery(q: string | undefined): Record<string, string> | undefined {
  if (q === undefined || q === '') return undefined;
  const out: Record<string, string> = {};
  try {
    for (const [k, v] of new URLSearchParams(q)) out[decodeURIComponent(k)] = decodeURIComponent(v);
  } catch {
    // A % not followed by two hex digits (found by the fuzzer: it was a 500).
    throw new HangarError('VALIDATION_FAILED', 'metadata has a malformed percent-encoding; encode each key and value with encodeURIComponent.', { fields: [{ field: 'metadata', message: 'malformed percent-encoding' }] });
  }
  return out;
}

function statesOf(q: string | undefined): MachineStatus[] {
  const wanted = (q ?? 'running,paused').split(',').map((s) => s.trim()).filter((s) => s !== '');
  const out: MachineStatus[] = [];
  for (const s of wanted) {
    if (s === 'running') out.push('running', 'creating');
    else if (s === 'paused') out.push('paused');
    else throw new HangarError('VALIDATION_FAILED', `state ${JSON.stringify(s)} is not one of running, paused.`, { fields: [{ field: 'state', message: 'must be running, paused or both' }] });
  }
  return out;
}

/** Register E2B's control API on a scope. */
export function registerControlRoutes(scope: FastifyInstance, o: ControlRoutesOptions): void {
  const { machines } = o;
  const caller = async (request: FastifyRequest): Promise<Caller> => {
    const key = request.headers['x-api-key'];
    // E2B's access tokens come as a bearer header; Hangar's keys work either way.
    const c = await o.authenticate(typeof key === 'string' && key !== '' ? `Bearer ${key}` : request.headers.authorization);
    // Its answers carry envd access tokens, which open a sandbox's commands and files: narrowed keys have no E2B surface.
    if (c.scope.readOnly || c.scope.machineId !== null) {
      throw new HangarError('FORBIDDEN', 'Read-only and one-machine API keys cannot use the E2B API (its answers carry tokens that run commands); use a full key.');
    }
    return c;
  };
  const idOf = (request: FastifyRequest): string => parseOrThrow(SandboxParams, request.params, 'path').sandboxID;
  // Hangar keeps destroyed machines' records for a while; to E2B a killed sandbox is gone (404).
  const live = async (c: Caller, id: string): Promise<MachineRecord> => {
    const m = await machines.get(c, id);
    if (m.status === 'destroyed') throw new HangarError('NOT_FOUND', `Sandbox ${id} was killed.`);
    return m;
  };

  scope.post('/v2/sandboxes', async (request, reply) => {
    const c = await caller(request);
    const body = parseOrThrow(NewSandboxBody, request.body ?? {});
    const m = await machines.create(c, createInput(body));
    return reply.code(201).send(sandboxBody(machines, m));
  });
  // The SDK's older create path; same body.
  scope.post('/sandboxes', async (request, reply) => {
    const c = await caller(request);
    const m = await machines.create(c, createInput(parseOrThrow(NewSandboxBody, request.body ?? {})));
    return reply.code(201).send(sandboxBody(machines, m));
  });

  scope.get('/v2/sandboxes', async (request, reply) => {
    const c = await caller(request);
    const q = parseOrThrow(ListSandboxesQuery, request.query ?? {}, 'query');
    const page = await machines.list(c, {
      states: statesOf(q.state),
      template: q.template,
      metadata: parseMetadataQuery(q.metadata),
      limit: q.limit ?? MAX_PAGE,
      nextToken: q.nextToken,
      paginated: true,
    });
    if (page.nextToken !== null) reply.header('x-next-token', page.nextToken);
    return page.items.map(listedBody);
  });
  // The v1 list: running sandboxes, every page at once.
  scope.get('/sandboxes', async (request) => {
    const c = await caller(request);
    const q = parseOrThrow(ListSandboxesQuery, request.query ?? {}, 'query');
    const page = await machines.list(c, { states: ['running', 'creating'], metadata: parseMetadataQuery(q.metadata), paginated: false });
    return page.items.map(listedBody);
  });

  scope.get('/sandboxes/:sandboxID', async (request) => detailBody(machines, await live(await caller(request), idOf(request))));

  scope.delete('/sandboxes/:sandboxID', async (request, reply) => {
    const c = await caller(request);
    const id = idOf(request);
    await live(c, id);
    await machines.destroy(c, id);
    return reply.code(204).send();
  });

  scope.post('/sandboxes/:sandboxID/timeout', async (request, reply) => {
    const c = await caller(request);
    const id = idOf(request);
    const body = parseOrThrow(TimeoutBody, request.body ?? {});
    await live(c, id);
    // E2B: the sandbox ends `timeout` seconds from now; 0 ends it at once.
    if (body.timeout === 0) await machines.destroy(c, id);
    else await machines.refreshTimeout(c, id, body.timeout * 1000);
    return reply.code(204).send();
  });

  scope.post('/sandboxes/:sandboxID/pause', async (request, reply) => {
    const c = await caller(request);
    const body = parseOrThrow(PauseBody, request.body ?? {});
    if (body.memory === false) throw unsupported('keepMemory: false', 'a Hangar pause always keeps memory (a CRIU snapshot).');
    const id = idOf(request);
    await live(c, id);
    await machines.pause(c, id);
    return reply.code(204).send();
  });

  const connect = async (request: FastifyRequest, resumeOnly: boolean): Promise<{ status: number; body: unknown }> => {
    const c = await caller(request);
    const id = idOf(request);
    const body = parseOrThrow(ConnectBody, request.body ?? {});
    if (body.memory === false) throw unsupported('onResume: reboot', 'Hangar resumes the paused processes; restart the machine with the native API to reboot it.');
    let m = await live(c, id);
    let status = 200;
    if (m.status === 'paused') {
      m = await machines.resume(c, id);
      status = 201;
    } else if (resumeOnly) {
      throw new HangarError('STATE_CONFLICT', `Sandbox ${id} is ${m.status}, not paused.`, { status: m.status });
    }
    // Connecting extends the timeout, never shortens it (as E2B does).
    if (body.timeout !== undefined && m.timeoutAt < machines.now() + body.timeout * 1000) m = await machines.refreshTimeout(c, id, body.timeout * 1000);
    return { status, body: sandboxBody(machines, m) };
  };
  scope.post('/v2/sandboxes/:sandboxID/connect', async (request, reply) => {
    const r = await connect(request, false);
    return reply.code(r.status).send(r.body);
  });
  scope.post('/sandboxes/:sandboxID/resume', async (request, reply) => {
    const r = await connect(request, true);
    return reply.code(201).send(r.body);
  });

  scope.post('/sandboxes/:sandboxID/snapshots', async (request, reply) => {
    const snap = await machines.snapshot(await caller(request), idOf(request));
    return reply.code(201).send({ snapshotID: snap.id, names: [snap.id] });
  });

  scope.get('/snapshots', async (request, reply) => {
    const c = await caller(request);
    const q = parseOrThrow(SnapshotListQuery, request.query ?? {}, 'query');
    const all = (await machines.listSnapshots(c, q.sandboxID)).filter((s) => q.name === undefined || s.id === q.name).sort((a, b) => a.createdAt - b.createdAt || a.id.localeCompare(b.id));
    // Paged by position: the token is the id of the last snapshot answered.
    const from = q.nextToken === undefined ? 0 : all.findIndex((s) => s.id === q.nextToken) + 1;
    if (q.nextToken !== undefined && from === 0) throw new HangarError('INVALID_NEXT_TOKEN', 'nextToken names no snapshot of this listing; start again without it.');
    const limit = q.limit ?? MAX_PAGE;
    const page = all.slice(from, from + limit);
    if (from + limit < all.length) reply.header('x-next-token', page[page.length - 1]!.id);
    return page.map((s) => ({ snapshotID: s.id, names: [s.id] }));
  });
  // E2B deletes snapshots as templates; Hangar's snapshot ids start with snap_.
  scope.delete('/templates/:templateID', async (request, reply) => {
    const c = await caller(request);
    const id = parseOrThrow(TemplateParams, request.params, 'path').templateID;
    if (!id.startsWith('snap_')) throw new HangarError('UNSUPPORTED_OPERATION', `Only snapshots are deleted here; delete template ${id} with the native API (DELETE /v1/templates/{name}).`);
    await machines.deleteSnapshot(c, id);
    return reply.code(204).send();
  });

  scope.post('/sandboxes/:sandboxID/fork', async (request, reply) => {
    const c = await caller(request);
    const id = idOf(request);
    const body = parseOrThrow(ForkBody, request.body ?? {});
    const source = await live(c, id);
    // A live snapshot of the source (it keeps running), then one machine restored from it per fork.
    const snap = await machines.snapshot(c, id);
    const results: unknown[] = [];
    for (let i = 0; i < (body.count ?? 1); i++) {
      try {
        const m = await machines.create(c, { snapshotId: snap.id, timeoutMs: (body.timeout ?? DEFAULT_TIMEOUT_S) * 1000, metadata: source.metadata, timeoutAction: source.timeoutAction });
        results.push({ sandbox: sandboxBody(machines, m) });
      } catch (err) {
        if (!(err instanceof HangarError)) throw err;
        results.push({ error: { code: err.status, message: err.message } });
      }
    }
    return reply.code(201).send(results);
  });

  // Routes of the SDK that Hangar does not serve: a clear answer rather than a misleading 404.
  const notServed = (what: string, why: string) => async (): Promise<never> => {
    throw new HangarError('UNSUPPORTED_OPERATION', `${what} is not served by Hangar's E2B API: ${why}`);
  };
  scope.get('/sandboxes/:sandboxID/metrics', async (request) => {
    const c = await caller(request);
    const m = await live(c, idOf(request));
    if (m.status !== 'running') return [];
    return [await sampleMetrics(o.compute, machines, c, m)];
  });
  scope.put('/sandboxes/:sandboxID/network', notServed('Network updates', 'set the outbound policy at create.'));
}
