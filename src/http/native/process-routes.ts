import type { z } from 'zod';
import { HangarError } from '../../domain/errors.js';
import { normaliseCwd } from '../../domain/machine.js';
import { EXITED_PROCESSES_KEPT, PROCESS_OUTPUT_LIMIT_BYTES, type ProcessInfo, type ProcessService } from '../../service/process-service.js';
import type { OutputSlice } from '../../service/process-output.js';
import { defineRoute, type AnyRoute } from '../route.js';
import { clientGone } from '../shared/client-gone.js';
import { EventStream } from '../shared/event-stream.js';
import { ErrorSchema } from '../shared/schemas.js';
import {
  DEFAULT_PROCESS_WAIT_MS,
  GetProcessQuery,
  MachineParams,
  ProcessListSchema,
  ProcessOutputQuery,
  ProcessOutputSchema,
  ProcessParams,
  ProcessSchema,
  ProcessStdinBody,
  ProcessStdinQuery,
  SignalProcessBody,
  StartProcessBody,
} from './schemas.js';

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
      params: MachineParams,
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
      params: MachineParams,
      responses: { 200: { description: 'The processes.', schema: ProcessListSchema }, ...errors },
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
        return renderProcess(await processes.wait(caller, params.id, params.pid, query.timeout_ms ?? DEFAULT_PROCESS_WAIT_MS, clientGone(reply)));
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
      query: ProcessOutputQuery,
      headers: [{ name: 'Last-Event-ID', description: 'Offset to resume from when `offset` is not given (sent by EventSource).' }],
      responses: {
        200: {
          description: 'The output (JSON), or server-sent events with follow=true.',
          schema: ProcessOutputSchema,
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
      body: SignalProcessBody,
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
      query: ProcessStdinQuery,
      body: ProcessStdinBody,
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
