import { z } from 'zod';
import { HangarError } from '../../domain/errors.js';
import { normaliseCwd } from '../../domain/machine.js';
import { PROCESS_SIGNALS, type ProcessSignal } from '../../runtime/runtime.js';
import { EXITED_PROCESSES_KEPT, PROCESS_OUTPUT_LIMIT_BYTES, type ProcessInfo, type ProcessService } from '../../service/process-service.js';
import type { OutputSlice } from '../../service/process-output.js';
import { defineRoute, type AnyRoute } from '../route.js';
import { intBetween } from '../validation.js';
import { clientGone, EventStream, ExecBody } from './exec-routes.js';
import { ErrorSchema, IdParams } from './schemas.js';

const MAX_PROCESS_TIMEOUT_MS = 30 * 24 * 3_600_000;
const DEFAULT_WAIT_MS = 30_000;
const MAX_WAIT_MS = 300_000;

/** Body of POST /v1/machines/{id}/processes. */
export const StartProcessBody = z
  .strictObject({
    cmd: ExecBody.shape.cmd,
    cwd: ExecBody.shape.cwd,
    env: ExecBody.shape.env,
    user: ExecBody.shape.user,
    stdin: z.string().optional().describe('Written to stdin (UTF-8) as the process starts; stdin stays open unless close_stdin. @default nothing'),
    close_stdin: z.boolean().optional().describe('Close stdin once `stdin` is written: the process reads end-of-file. @default false'),
    timeout_ms: intBetween(1, MAX_PROCESS_TIMEOUT_MS)
      .optional()
      .describe('The process and everything it started are killed after this long; exit_code is then 124. @default no limit'),
  })
  .meta({ id: 'StartProcessRequest' });

/** A background process. */
export const ProcessSchema = z
  .object({
    pid: z.number().int().describe('The process id inside the machine (what `ps` there shows).'),
    status: z.enum(['running', 'exited']),
    cmd: z.union([z.array(z.string()), z.string()]).describe('As given when started.'),
    cwd: z.string(),
    user: z.string(),
    started_at: z.string().describe('ISO 8601.'),
    ended_at: z.string().nullable().describe('ISO 8601; null while running.'),
    exit_code: z.number().int().nullable().describe('Null while running; 128+n when signal n killed it; 124 when killed at timeout_ms; 137 when a pause or the server ended it.'),
    signal: z.string().nullable().describe('Name of the signal that killed it (TERM, KILL, ...), when exit_code is 128+n; else null.'),
    timed_out: z.boolean(),
    stdin_open: z.boolean(),
    output_bytes: z.number().int().describe('Bytes of output so far, stdout and stderr together, dropped ones included: the end offset.'),
  })
  .meta({ id: 'Process' });

const ProcessParams = IdParams.extend({
  pid: z.coerce.number().int().min(1).max(4_194_304).describe('Process id inside the machine, as returned by start.'),
});

const boolQuery = z
  .enum(['true', 'false', '1', '0'])
  .optional()
  .transform((v) => v === 'true' || v === '1');

const GetProcessQuery = z.object({
  wait: boolQuery.describe('Answer only once the process has exited, or timeout_ms passed. @default false'),
  timeout_ms: z.coerce.number().int().min(0).max(MAX_WAIT_MS).optional().describe(`How long to wait with wait=true. @default ${DEFAULT_WAIT_MS}`),
});

const OutputQuery = z.object({
  offset: z.coerce.number().int().min(0).optional().describe('Start after this many bytes of output (stdout and stderr together); next_offset of a previous answer. @default 0, or the Last-Event-ID header'),
  follow: boolQuery.describe('Stream the output as server-sent events until the process exits. @default false'),
});

const OutputSchema = z
  .object({
    pid: z.number().int(),
    status: z.enum(['running', 'exited']),
    exit_code: z.number().int().nullable(),
    stdout: z.string().describe('UTF-8 text written to stdout from `offset` on.'),
    stderr: z.string().describe('UTF-8 text written to stderr from `offset` on.'),
    offset: z.number().int().describe('Where this output starts (later than asked when older output was dropped).'),
    missed_bytes: z.number().int().describe(`Bytes between the offset asked for and \`offset\` that were dropped: only the last ${PROCESS_OUTPUT_LIMIT_BYTES} bytes are kept.`),
    next_offset: z.number().int().describe('Pass as offset to read on from here.'),
  })
  .meta({ id: 'ProcessOutput' });

const SignalBody = z.strictObject({
  signal: z
    .string()
    .transform((s) => s.toUpperCase().replace(/^SIG/, ''))
    .pipe(z.enum(PROCESS_SIGNALS as [ProcessSignal, ...ProcessSignal[]], { error: `must be one of ${PROCESS_SIGNALS.join(', ')}` }))
    .describe(`Signal name, with or without SIG: ${PROCESS_SIGNALS.join(', ')}.`),
});

const StdinBody = z
  .strictObject({
    data: z.string().optional().describe('UTF-8 text to write. @default nothing'),
    close: z.boolean().optional().describe('Close stdin after writing. @default false'),
  })
  .optional();

const StdinQuery = z.object({ close: boolQuery.describe('Close stdin after writing the body. @default false') });

const errors = {
  400: { description: 'Invalid input (VALIDATION_FAILED).', schema: ErrorSchema },
  401: { description: 'Missing or unknown API key.', schema: ErrorSchema },
  404: { description: 'No such machine for this team, the machine is destroyed, or no such process.', schema: ErrorSchema },
};
const conflict = { 409: { description: 'The machine is not running, or the process has exited (or its stdin is closed).', schema: ErrorSchema } };

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

function renderProcess(p: ProcessInfo): z.output<typeof ProcessSchema> {
  return {
    pid: p.pid,
    status: p.status,
    cmd: p.cmd,
    cwd: p.cwd,
    user: p.user,
    started_at: iso(p.startedAt)!,
    ended_at: iso(p.endedAt),
    exit_code: p.exitCode,
    signal: p.signal,
    timed_out: p.timedOut,
    stdin_open: p.stdinOpen,
    output_bytes: p.outputBytes,
  };
}

function textOf(slice: OutputSlice, stream: 'stdout' | 'stderr'): string {
  return Buffer.concat(slice.chunks.filter((c) => c.stream === stream).map((c) => c.data)).toString('utf8');
}

/** Background processes in a machine: start, list, output (also live), signals, stdin, wait. */
export function processRoutes(processes: ProcessService): AnyRoute[] {
  return [
    defineRoute({
      method: 'POST',
      url: '/v1/machines/:id/processes',
      operationId: 'startProcess',
      summary: 'Start a background process in a machine',
      description:
        'Starts the command and answers at once with its pid inside the machine. The server keeps its output (the last ' +
        `${PROCESS_OUTPUT_LIMIT_BYTES} bytes) whether or not anyone reads it, and its stdin open until closed. A running ` +
        'process keeps its machine active. A pause or destroy ends it; so does a server stop.',
      tag: 'processes',
      auth: 'team',
      params: IdParams,
      body: StartProcessBody,
      status: 201,
      responses: {
        201: { description: 'Running.', schema: ProcessSchema },
        ...errors,
        ...conflict,
        422: { description: 'COMMAND_NOT_STARTED: no such command, or it could not be started (e.g. cwd missing).', schema: ErrorSchema },
        429: { description: 'The machine already runs 64 background processes.', schema: ErrorSchema },
      },
      handler: async ({ params, body, caller }) => {
        const p = await processes.start(caller, params.id, {
          cmd: body.cmd,
          cwd: body.cwd === undefined ? undefined : (normaliseCwd(body.cwd) ?? undefined),
          env: body.env,
          user: body.user,
          stdin: body.stdin,
          closeStdin: body.close_stdin,
          timeoutMs: body.timeout_ms,
        });
        return renderProcess(p);
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/v1/machines/:id/processes',
      operationId: 'listProcesses',
      summary: "A machine's background processes",
      description: `Running ones and the last ${EXITED_PROCESSES_KEPT} exited ones, oldest first. Only processes started through this API.`,
      tag: 'processes',
      auth: 'team',
      params: IdParams,
      responses: { 200: { description: 'The processes.', schema: z.object({ items: z.array(ProcessSchema) }) }, ...errors },
      handler: async ({ params, caller }) => ({ items: (await processes.list(caller, params.id)).map(renderProcess) }),
    }),
    defineRoute({
      method: 'GET',
      url: '/v1/machines/:id/processes/:pid',
      operationId: 'getProcess',
      summary: 'One background process; with wait=true, once it has exited',
      description:
        'With `wait=true` the answer comes when the process exits or after `timeout_ms` (then still `running`); a client ' +
        'that disconnects stops the wait, never the process.',
      tag: 'processes',
      auth: 'team',
      params: ProcessParams,
      query: GetProcessQuery,
      responses: { 200: { description: 'The process.', schema: ProcessSchema }, ...errors },
      handler: async ({ params, query, caller, reply }) => {
        if (!query.wait) return renderProcess(await processes.get(caller, params.id, params.pid));
        return renderProcess(await processes.wait(caller, params.id, params.pid, query.timeout_ms ?? DEFAULT_WAIT_MS, clientGone(reply)));
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/v1/machines/:id/processes/:pid/output',
      operationId: 'getProcessOutput',
      summary: "A background process's output, from an offset; follow=true streams it",
      description:
        'Offsets count bytes of stdout and stderr together, in the order they came. Without follow: the output kept from ' +
        '`offset` on, as JSON. With `follow=true`: `text/event-stream` with events `stdout` and `stderr` (data: the chunk as ' +
        'a JSON string; id: the offset after it, so an EventSource resumes where it stopped), `gap` `{"missed_bytes"}` when ' +
        'output was dropped before it was sent, and a last `exit` event with the process once it has exited. Disconnecting ' +
        'never affects the process.',
      tag: 'processes',
      auth: 'team',
      params: ProcessParams,
      query: OutputQuery,
      headers: [{ name: 'Last-Event-ID', description: 'Offset to resume from when `offset` is not given (sent by EventSource).' }],
      responses: {
        200: {
          description: 'The output (JSON), or server-sent events with follow=true.',
          schema: OutputSchema,
        },
        ...errors,
      },
      handler: async ({ params, query, caller, request, reply }) => {
        const lastEventId = Number(request.headers['last-event-id']);
        const offset = query.offset ?? (Number.isInteger(lastEventId) && lastEventId >= 0 ? lastEventId : 0);
        if (!query.follow) {
          const { info, slice } = await processes.output(caller, params.id, params.pid, offset);
          return {
            pid: info.pid,
            status: info.status,
            exit_code: info.exitCode,
            stdout: textOf(slice, 'stdout'),
            stderr: textOf(slice, 'stderr'),
            offset: slice.from,
            missed_bytes: slice.missed,
            next_offset: slice.next,
          };
        }
        const gone = clientGone(reply);
        let events = null as EventStream | null;
        const exit = await processes.follow(
          caller,
          params.id,
          params.pid,
          offset,
          async (slice) => {
            events ??= new EventStream(reply);
            if (slice.missed > 0) await events.send('gap', { missed_bytes: slice.missed }, String(slice.from));
            for (const c of slice.chunks) await events.send(c.stream, c.data.toString('utf8'), String(c.offset + c.data.length));
          },
          gone,
        ).catch((err: unknown) => {
          // Errors before the first event (404, 400) are ordinary JSON answers.
          if (!events) throw err;
          return null;
        });
        events ??= gone.aborted ? null : new EventStream(reply);
        if (exit) await events?.send('exit', renderProcess(exit));
        events?.end();
      },
    }),
    defineRoute({
      method: 'POST',
      url: '/v1/machines/:id/processes/:pid/signal',
      operationId: 'signalProcess',
      summary: 'Send a signal to a background process',
      description: 'Sent to the process group the process leads (the command and the children it did not move elsewhere).',
      tag: 'processes',
      auth: 'team',
      params: ProcessParams,
      body: SignalBody,
      responses: { 200: { description: 'Sent; the process as it is now.', schema: ProcessSchema }, ...errors, ...conflict },
      handler: async ({ params, body, caller }) => renderProcess(await processes.signal(caller, params.id, params.pid, body.signal)),
    }),
    defineRoute({
      method: 'POST',
      url: '/v1/machines/:id/processes/:pid/stdin',
      operationId: 'writeProcessStdin',
      summary: "Write to a background process's stdin, or close it",
      description:
        'JSON `{"data": "text", "close": bool}`, or raw bytes with `Content-Type: application/octet-stream` (and ' +
        '`?close=true` to close after them). An empty body with close closes stdin only.',
      tag: 'processes',
      auth: 'team',
      params: ProcessParams,
      query: StdinQuery,
      body: StdinBody,
      rawBody: { contentType: 'application/octet-stream', description: 'Bytes written to stdin as they are.' },
      responses: { 200: { description: 'Written; the process as it is now.', schema: ProcessSchema }, ...errors, ...conflict },
      handler: async ({ params, query, body, rawBody, caller }) => {
        const data = rawBody ?? Buffer.from(body?.data ?? '', 'utf8');
        const close = query.close || (body?.close ?? false);
        if (data.length === 0 && !close) {
          throw new HangarError('VALIDATION_FAILED', 'Invalid request. Send data to write, or close: true.', {
            fields: [{ field: 'data', message: 'nothing to write and close not asked' }],
          });
        }
        return renderProcess(await processes.writeStdin(caller, params.id, params.pid, data, close));
      },
    }),
  ];
}
