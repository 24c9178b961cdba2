/**
 * The OpenAPI-driven fuzzer: generated requests against every operation of a real server,
 * with every kind of caller, checked for no 5xx, catalogue-shaped 4xx, no hang, and no
 * change left by a rejected request.
 */
import fc from 'fast-check';
import { ERROR_CATALOGUE } from '../../domain/errors.js';
import { MAX_PATH_SEGMENT } from '../../http/framework-errors.js';
import { ON_DEMAND_TEMPLATES } from '../../service/template-service.js';
import { ADMIN_KEY, waitFor, type TestServer } from '../harness.js';
import { e2bOperations } from './e2b-operations.js';
import { operationsOf, ValueGenerator, hostileValue, type OpenApiDocument, type Operation } from './openapi-arbitraries.js';
import { authorization, buildWorld, listState, pathIds, restoreWorld, type Caller, type World } from './fuzz-world.js';

/** Options of a fuzz run. */
export interface FuzzOptions {
  /** Requests to send in all. */
  requests: number;
  /** fast-check seed; print it, a failure replays with it. */
  seed: number;
  /** Requests between two state listings. @default 25 */
  batch?: number;
  /** Milliseconds a request may take before it counts as a hang. @default 60000 */
  requestTimeoutMs?: number;
}

/** One generated request, before it is tied to the world's ids. */
interface Draft {
  op: Operation;
  caller: Caller;
  pathPick: number[];
  pathHostile: (unknown | null)[];
  query: [string, unknown][];
  headers: [string, unknown][];
  body: { kind: 'value'; value: unknown } | { kind: 'raw'; text: string; type: string } | { kind: 'none' };
}

/** A request that broke a rule. */
export interface FuzzFailure {
  rule: string;
  method: string;
  url: string;
  caller: Caller;
  body: string;
  status: number;
  answer: string;
}

/** What a run found. */
export interface FuzzReport {
  seed: number;
  sent: number;
  /** Count by `METHOD path` and status class (2xx, 4xx, 5xx, hang). */
  byRoute: Map<string, Record<string, number>>;
  failures: FuzzFailure[];
  /** Rejected-only batches whose listings were compared. */
  batchesCompared: number;
}

const CODES = new Set(Object.keys(ERROR_CATALOGUE));
const MUTATING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
const CALLERS: Caller[] = ['admin', 'A', 'A', 'A', 'B', 'wrong', 'none', 'malformed'];
/** Valid-shaped requests come with a real key, mostly the world's team A. */
const KEYED_CALLERS: Caller[] = ['admin', 'A', 'A', 'A', 'B'];
const ON_DEMAND = new RegExp(`^(${ON_DEMAND_TEMPLATES.join('|')})\\b`);

/** [scaled-down value, schema maximum] of sizes a valid request may ask for. */
const SIZE_CAPS: Record<string, [number, number]> = { count: [1, 16], disk_mb: [256, 1_048_576], size_mb: [64, 1_048_576], memory_mb: [512, 262_144], vcpus: [2, 64] };
/** The longest an exec or a process wait may run: under the fuzzer's hang limit. */
const WAIT_CAP: [number, number] = [5_000, 3_600_000];

/** The arbitrary of drafts for one operation. */
function draftsOf(op: Operation, gen: ValueGenerator, hostile: boolean): fc.Arbitrary<Draft> {
  const pathParams = op.parameters.filter((p) => p.in === 'path');
  const queryParams = op.parameters.filter((p) => p.in === 'query');
  const headerParams = op.parameters.filter((p) => p.in === 'header');
  const optionalEntry = (name: string, required: boolean, arb: fc.Arbitrary<unknown>): fc.Arbitrary<[string, unknown] | null> =>
    required ? arb.map((v) => [name, v] as [string, unknown]) : fc.option(arb.map((v) => [name, v] as [string, unknown]), { freq: 2 });
  const body: fc.Arbitrary<Draft['body']> =
    op.body === null
      ? op.method === 'GET'
        ? fc.constant({ kind: 'none' as const })
        : fc.oneof({ arbitrary: fc.constant({ kind: 'none' as const }), weight: 8 }, { arbitrary: fc.constant({ kind: 'raw' as const, text: '{"x":1}', type: 'application/json' }), weight: 1 })
      : op.body.mediaType === 'application/json'
        ? fc.oneof(
            { arbitrary: gen.value(op.body.schema).map((value) => ({ kind: 'value' as const, value })), weight: 12 },
            { arbitrary: fc.constant({ kind: 'none' as const }), weight: 1 },
            {
              arbitrary: fc.record({
                text: fc.constantFrom('{', '{"a":', '[1,', 'nul', '{"__proto__":{"x":1}}', '{"constructor":{"prototype":{}}}', '"\\ud800"', '', '\u0000'),
                type: fc.constantFrom('application/json', 'text/plain', 'application/x-www-form-urlencoded', 'application/json; charset=latin1', 'bogus'),
              }).map((r) => ({ kind: 'raw' as const, ...r })),
              weight: 2,
            },
          )
        : fc.record({
            text: fc.oneof(fc.string({ unit: 'binary', maxLength: 64 }), fc.constantFrom('', 'not a tar', '\u0000'.repeat(1024))),
            type: fc.constantFrom(op.body.mediaType, 'application/octet-stream', 'application/json', 'text/plain'),
          }).map((r) => ({ kind: 'raw' as const, ...r }));
  return fc.record({
    op: fc.constant(op),
    caller: fc.constantFrom(...(hostile ? CALLERS : KEYED_CALLERS)),
    pathPick: fc.tuple(...pathParams.map(() => fc.nat(20))),
    pathHostile: fc.tuple(...pathParams.map(() => (hostile ? fc.oneof({ arbitrary: fc.constant(null), weight: 5 }, { arbitrary: hostileValue(), weight: 1 }) : fc.constant(null)))),
    query: fc.tuple(...queryParams.map((p) => optionalEntry(p.name, p.required, gen.value(p.schema)))).map((e) => e.filter((x) => x !== null)),
    headers: fc.tuple(...headerParams.map((p) => optionalEntry(p.name, p.required, gen.value(p.schema)))).map((e) => e.filter((x) => x !== null)),
    body,
  });
}

/** A query or header value as text: strings as they are, anything else as JSON. */
function asText(v: unknown): string {
  return typeof v === 'string' ? v : (JSON.stringify(v) ?? 'undefined');
}

/**
 * Keep accepted requests cheap and offline: no template build from Debian or an image
 * (those reach a mirror or the host's files), no build steps (they run with outbound
 * network), no machine from the on-demand templates (built from Debian on first use),
 * no warm pool bigger than one machine.
 */
function tame(op: Operation, value: unknown, name = ''): unknown {
  const waits = op.path.includes('/exec') || op.path.includes('/processes');
  const walk = (v: unknown, key: string): unknown => {
    if (typeof v === 'string') return ON_DEMAND.test(v) ? 'base' : v;
    // Sizes and waits that the schema allows but this shared host should not spend: valid
    // values are scaled down, values past the schema's maximum are left to be refused.
    if (typeof v === 'number') {
      const cap = SIZE_CAPS[key] ?? (waits && key === 'timeout_ms' ? WAIT_CAP : undefined);
      return cap !== undefined && v > cap[0] && v <= cap[1] ? cap[0] : v;
    }
    if (Array.isArray(v)) return v.map((x) => walk(x, key));
    if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x, k)]));
    return v;
  };
  const out = walk(value, name);
  if (out === null || typeof out !== 'object' || Array.isArray(out)) return out;
  const o = out as Record<string, unknown>;
  if (op.path === '/v1/templates' && op.method === 'POST') {
    const source = o.source as Record<string, unknown> | undefined;
    if (source !== null && typeof source === 'object' && !('template' in source)) o.source = { template: 'base' };
    delete o.steps;
    delete o.start_cmd;
    delete o.ready_cmd;
  }
  if (op.path.startsWith('/v1/warm-pools') && typeof o.size === 'number' && o.size > 1) o.size = 1;
  return o;
}

/** A path segment for any text: lone surrogates become U+FFFD, a `%` not followed by hex is sent raw now and then. */
function pathSegment(text: string): string {
  const wellFormed = Buffer.from(text, 'utf8').toString('utf8');
  return /^%[^0-9a-f]/i.test(wellFormed) ? wellFormed.replace(/[^\x21-\x7e]/g, '') : encodeURIComponent(wellFormed);
}

/** Codes of requests Node's HTTP parser refused (framework-errors.ts). */
const PRE_ROUTE_CODES = new Set(['HEADERS_TOO_LARGE', 'MALFORMED_REQUEST', 'REQUEST_TIMEOUT']);

/** Whether the router refuses this path before any route runs: a segment too long, or a bad % escape. */
function refusedByRouter(path: string): boolean {
  return path.split('/').some((seg) => seg.length > MAX_PATH_SEGMENT) || /%(?![0-9a-f]{2})/i.test(path);
}

/** Check one answer against the rules; returns the broken rule or null. */
function brokenRule(status: number, contentType: string, text: string, shape: Operation['errorShape'], preRoute: boolean): string | null {
  if (status >= 500) return '5xx answer';
  if (status < 400) return null;
  if (!contentType.includes('application/json')) return `4xx without a JSON body (${contentType || 'no content-type'})`;
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return '4xx body is not JSON';
  }
  const b = body as { code?: unknown; message?: unknown };
  // What is refused before routing (HTTP parser, router) cannot know its surface: it has the catalogue's shape everywhere.
  if (shape === 'e2b' && !(typeof b.code === 'string' && (PRE_ROUTE_CODES.has(b.code) || preRoute))) {
    if (typeof b !== 'object' || b === null || b.code !== status || typeof b.message !== 'string' || b.message === '') return `4xx body is not E2B's {code: ${status}, message}`;
    return null;
  }
  if (typeof b !== 'object' || b === null || typeof b.code !== 'string' || typeof b.message !== 'string') return '4xx body is not {code, message}';
  if (!CODES.has(b.code)) return `4xx code ${b.code} is not in the catalogue`;
  const expected = ERROR_CATALOGUE[b.code as keyof typeof ERROR_CATALOGUE].status;
  if (expected !== status) return `4xx code ${b.code} sent with ${status}, the catalogue says ${expected}`;
  if (b.message.length === 0) return '4xx with an empty message';
  return null;
}

/** Send one draft; returns its status class and, when a rule broke, the failure. */
async function send(t: TestServer, world: World, d: Draft, timeoutMs: number): Promise<{ cls: string; status: number; failure: FuzzFailure | null }> {
  const op = d.op;
  let i = 0;
  const path = op.path.replace(/\{([^}]+)\}/g, (_m, name: string) => {
    const idx = i++;
    const hostile = d.pathHostile[idx];
    if (hostile !== null && hostile !== undefined) return pathSegment(asText(hostile));
    const ids = pathIds(world, op.path, name);
    return encodeURIComponent(ids[(d.pathPick[idx] ?? 0) % ids.length] ?? '');
  });
  const qs = new URLSearchParams();
  for (const [k, v] of d.query) qs.append(k, asText(tame(op, v, k)));
  const url = `${path}${qs.size ? `?${qs.toString()}` : ''}`;
  const headers: Record<string, string> = {};
  for (const [k, v] of d.headers) headers[k] = asText(v).replace(/[^\x20-\x7e]/g, '?');
  const auth = authorization(world, d.caller);
  if (d.caller === 'admin') headers.authorization = `Bearer ${ADMIN_KEY}`;
  else if (auth !== undefined) headers.authorization = `Bearer ${auth}`;
  else if (d.caller === 'malformed') headers.authorization = 'Basic Zm9vOmJhcg==';
  let body: string | undefined;
  if (d.body.kind === 'value') {
    body = JSON.stringify(tame(op, d.body.value));
    headers['content-type'] = 'application/json';
  } else if (d.body.kind === 'raw') {
    body = d.body.text;
    headers['content-type'] = d.body.type;
  }
  const failure = (rule: string, status: number, answer: string): FuzzFailure => ({ rule, method: op.method, url: url.length > 300 ? `${url.slice(0, 300)}… (${url.length} chars)` : url, caller: d.caller, body: (body ?? '').slice(0, 500), status, answer: answer.slice(0, 500) });
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), timeoutMs);
  try {
    const res = await fetch(`${t.url}${url}`, { method: op.method, headers, body, signal: abort.signal, redirect: 'manual' });
    const type = res.headers.get('content-type') ?? '';
    // A stream that was accepted (SSE, exec/stream, a file download) is not read to its end.
    if (res.status < 400 && (type.includes('event-stream') || type.includes('ndjson') || type.includes('octet-stream') || type.includes('x-tar'))) {
      await res.body?.cancel();
      return { cls: '2xx', status: res.status, failure: null };
    }
    const text = await res.text();
    const rule = brokenRule(res.status, type, text, op.errorShape, refusedByRouter(path));
    return { cls: `${Math.floor(res.status / 100)}xx`, status: res.status, failure: rule === null ? null : failure(rule, res.status, text) };
  } catch (err) {
    if (abort.signal.aborted) return { cls: 'hang', status: 0, failure: failure(`no answer within ${timeoutMs} ms`, 0, '') };
    return { cls: 'error', status: 0, failure: failure(`connection failed: ${String(err)}`, 0, '') };
  } finally {
    clearTimeout(timer);
  }
}

/** Fetch the server's own OpenAPI document. */
export async function fetchDocument(t: TestServer): Promise<OpenApiDocument> {
  const r = await t.request('GET', '/openapi.json', { key: null });
  if (r.status !== 200) throw new Error(`GET /openapi.json answered ${r.status}`);
  return r.body as OpenApiDocument;
}

/** Run the fuzzer against a started server; the world is built here and torn down by the server's dispose. */
export async function runFuzz(t: TestServer, options: FuzzOptions): Promise<FuzzReport> {
  const doc = await fetchDocument(t);
  const ops = [...operationsOf(doc), ...e2bOperations()];
  // Two kinds of request per operation: hostile values anywhere, and wholly valid-shaped
  // ones (so that accepted requests reach the service and the machines behind it).
  const dirty = new ValueGenerator(doc.components?.schemas ?? {}, 2);
  const clean = new ValueGenerator(doc.components?.schemas ?? {}, 0);
  const world = await buildWorld(t);
  const batch = options.batch ?? 25;
  const timeoutMs = options.requestTimeoutMs ?? 60_000;
  // Every operation gets its share, in a seeded order: no route is left to chance.
  const drafts = fc.sample(fc.oneof(...ops.map((op) => fc.oneof({ arbitrary: draftsOf(op, dirty, true), weight: 2 }, { arbitrary: draftsOf(op, clean, false), weight: 1 }))), { seed: options.seed, numRuns: options.requests });
  const report: FuzzReport = { seed: options.seed, sent: 0, byRoute: new Map(), failures: [], batchesCompared: 0 };
  for (const op of ops) report.byRoute.set(`${op.method} ${op.path}`, {});
  for (let start = 0; start < drafts.length; start += batch) {
    const before = await listState(t, world);
    let changed = false;
    for (const d of drafts.slice(start, start + batch)) {
      const r = await send(t, world, d, timeoutMs);
      report.sent++;
      const row = report.byRoute.get(`${d.op.method} ${d.op.path}`) ?? {};
      row[r.cls] = (row[r.cls] ?? 0) + 1;
      report.byRoute.set(`${d.op.method} ${d.op.path}`, row);
      if (r.failure) report.failures.push(r.failure);
      if (MUTATING.has(d.op.method) && r.status < 400) changed = true;
    }
    // Accepted Paperspace-style operations finish in the background: let them, before comparing.
    // (drain() would also close the operations to new work: poll instead.)
    await waitFor(async () => t.server.operations.allInFlight().size === 0, 120_000);
    if (!changed) {
      const after = await listState(t, world);
      report.batchesCompared++;
      for (const [k, v] of Object.entries(before)) {
        if (JSON.stringify(v) !== JSON.stringify(after[k])) {
          report.failures.push({ rule: `rejected requests changed "${k}"`, method: '-', url: `batch from request ${start}`, caller: 'admin', body: JSON.stringify(v).slice(0, 500), status: 0, answer: JSON.stringify(after[k]).slice(0, 500) });
        }
      }
    } else {
      await restoreWorld(t, world);
    }
  }
  return report;
}

/** The summary table: requests by route and status class, then the totals and the seed. */
export function formatReport(r: FuzzReport): string {
  const classes = ['2xx', '3xx', '4xx', '5xx', 'hang', 'error'];
  const lines = [`${'route'.padEnd(64)} ${classes.map((c) => c.padStart(6)).join(' ')}`];
  const totals: Record<string, number> = {};
  for (const [route, row] of r.byRoute) {
    lines.push(`${route.padEnd(64)} ${classes.map((c) => String(row[c] ?? 0).padStart(6)).join(' ')}`);
    for (const c of classes) totals[c] = (totals[c] ?? 0) + (row[c] ?? 0);
  }
  lines.push(`${'total'.padEnd(64)} ${classes.map((c) => String(totals[c] ?? 0).padStart(6)).join(' ')}`);
  lines.push(`requests: ${r.sent}, 5xx: ${totals['5xx'] ?? 0}, rule failures: ${r.failures.length}, rejected-only batches compared: ${r.batchesCompared}, seed: ${r.seed}`);
  return lines.join('\n');
}
