import type { ServerResponse } from 'node:http';
import type { FastifyReply } from 'fastify';
import { z } from 'zod';
import { HangarError } from '../../domain/errors.js';
import { normaliseCwd } from '../../domain/machine.js';
import { DEFAULT_EXEC_TIMEOUT_MS, type ExecRequest, type ExecService } from '../../service/exec-service.js';
import { defineRoute, type AnyRoute } from '../route.js';
import { intBetween } from '../validation.js';
import { CreateMachineBody, ErrorSchema, IdParams } from './schemas.js';

const noNul = (v: string): boolean => !v.includes('\0');
const MAX_UID = 4_294_967_294;

/** Body of both exec endpoints. */
export const ExecBody = z
  .strictObject({
    cmd: z
      .union(
        [
          z.array(z.string().refine(noNul, 'must not contain NUL')).min(1).refine((a) => a[0] !== '', 'the first item (the command) must not be empty'),
          z.string().min(1).refine(noNul, 'must not contain NUL'),
        ],
        { error: 'must be an array of strings (argv) or a string (run with /bin/sh -c)' },
      )
      .describe('Argv (the first item is looked up in PATH), or a shell string run with `/bin/sh -c`.'),
    cwd: z
      .string()
      .min(1)
      .max(4096)
      .regex(/^\//, 'must be an absolute path')
      .refine(noNul, 'must not contain NUL')
      .optional()
      .describe("Working directory. @default the machine's cwd, else its template's (/root for base)"),
    env: CreateMachineBody.shape.env.describe("Variables set over the machine's environment."),
    user: z
      .string()
      .regex(/^([A-Za-z_][A-Za-z0-9_.-]{0,31}\$?|\d{1,10}(:\d{1,10})?)$/, 'must be a user name or uid[:gid]')
      .refine((u) => !/^\d/.test(u) || u.split(':').every((n) => Number(n) <= MAX_UID), `ids must be at most ${MAX_UID}`)
      .optional()
      .describe('A user name (looked up inside the machine) or uid[:gid] (gid 0 when omitted). @default "root"'),
    stdin: z.string().optional().describe('Fed to the command as UTF-8, then closed. @default empty'),
    timeout_ms: intBetween(1, 3_600_000)
      .optional()
      .describe(`The command and everything it started are killed after this long; exit_code is then 124. @default ${DEFAULT_EXEC_TIMEOUT_MS}`),
  })
  .meta({ id: 'ExecRequest' });

/** The answer of a non-streamed exec. */
export const ExecResultSchema = z
  .object({
    exit_code: z.number().int().describe('127: no such command; 126: it could not be started (e.g. cwd missing); 124: timed out; 128+n: killed by signal n.'),
    stdout: z.string().describe('UTF-8 (invalid bytes become U+FFFD), at most 1 MiB.'),
    stderr: z.string().describe('UTF-8 (invalid bytes become U+FFFD), at most 1 MiB.'),
    stdout_truncated: z.boolean().describe('True when stdout went past 1 MiB; the rest was read and dropped.'),
    stderr_truncated: z.boolean(),
    duration_ms: z.number().int(),
    timed_out: z.literal(true).optional().describe('Present only when the command was killed at timeout_ms.'),
  })
  .meta({ id: 'ExecResult' });

const errors = {
  400: { description: 'Invalid body (VALIDATION_FAILED), or a user name unknown inside the machine.', schema: ErrorSchema },
  401: { description: 'Missing or unknown API key.', schema: ErrorSchema },
  404: { description: 'No such machine for this team.', schema: ErrorSchema },
  409: { description: 'The machine is not running.', schema: ErrorSchema },
};

function toRequest(body: z.output<typeof ExecBody>): ExecRequest {
  return {
    cmd: body.cmd,
    cwd: body.cwd === undefined ? undefined : (normaliseCwd(body.cwd) ?? undefined),
    env: body.env,
    user: body.user,
    stdin: body.stdin,
    timeoutMs: body.timeout_ms,
  };
}

/** An AbortSignal that fires when the client goes away before the answer is complete. */
export function clientGone(reply: FastifyReply): AbortSignal {
  const ac = new AbortController();
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) ac.abort();
  });
  return ac.signal;
}

/** A text/event-stream answer written on the raw response, which Fastify hands over. */
export class EventStream {
  private readonly raw: ServerResponse;
  private readonly keepAlive: NodeJS.Timeout;

  constructor(reply: FastifyReply) {
    reply.hijack();
    this.raw = reply.raw;
    this.raw.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      // Proxies such as nginx would otherwise buffer the events.
      'x-accel-buffering': 'no',
    });
    // A comment line now and then stops proxies from closing a quiet stream.
    this.keepAlive = setInterval(() => void this.write(': keep-alive\n\n'), 15_000);
    this.keepAlive.unref();
    this.raw.once('close', () => clearInterval(this.keepAlive));
  }

  /** Send one event (with an id a reconnecting EventSource sends back as Last-Event-ID); resolves once the socket can take more (backpressure reaches the command). */
  send(event: string, data: unknown, id?: string): Promise<void> {
    return this.write(`event: ${event}\n${id === undefined ? '' : `id: ${id}\n`}data: ${JSON.stringify(data)}\n\n`);
  }

  end(): void {
    clearInterval(this.keepAlive);
    if (!this.raw.writableEnded) this.raw.end();
  }

  private write(text: string): Promise<void> {
    if (this.raw.destroyed || this.raw.writableEnded) return Promise.resolve();
    if (this.raw.write(text)) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        this.raw.off('drain', done);
        this.raw.off('close', done);
        resolve();
      };
      this.raw.on('drain', done);
      this.raw.on('close', done);
    });
  }
}

/** Commands inside a machine: one answer at the end, or server-sent events as output comes. */
export function execRoutes(exec: ExecService): AnyRoute[] {
  return [
    defineRoute({
      method: 'POST',
      url: '/v1/machines/:id/exec',
      operationId: 'execInMachine',
      summary: 'Run a command in a machine and wait for it',
      description:
        'Runs the command as a new process in the running machine and answers when it exits, with its exit code and ' +
        'output (each stream capped at 1 MiB). Counts as activity (last_active_at). A client that disconnects kills the command.',
      tag: 'machines',
      auth: 'team',
      params: IdParams,
      body: ExecBody,
      responses: { 200: { description: 'The command ran (whatever its exit code).', schema: ExecResultSchema }, ...errors },
      handler: async ({ params, body, caller, reply }) => {
        const r = await exec.run(caller, params.id, toRequest(body), clientGone(reply));
        return {
          exit_code: r.exitCode,
          stdout: r.stdout,
          stderr: r.stderr,
          stdout_truncated: r.stdoutTruncated,
          stderr_truncated: r.stderrTruncated,
          duration_ms: r.durationMs,
          ...(r.timedOut ? { timed_out: true } : {}),
        };
      },
    }),
    defineRoute({
      method: 'POST',
      url: '/v1/machines/:id/exec/stream',
      operationId: 'execInMachineStream',
      summary: 'Run a command in a machine, streaming its output',
      description:
        'Same body as exec. Answers `text/event-stream`: events `stdout` and `stderr` (data: the chunk as a JSON string) as ' +
        'output comes, uncapped, then one `exit` event `{"exit_code", "duration_ms", "timed_out"}`. An `error` event ' +
        '`{"code", "message"}` ends the stream if the machine stops meanwhile. Errors found before the command starts ' +
        '(400, 404, 409) are ordinary JSON answers. A client that disconnects kills the command.',
      tag: 'machines',
      auth: 'team',
      params: IdParams,
      body: ExecBody,
      responses: {
        200: {
          description: 'Server-sent events: stdout, stderr, then exit.',
          contentType: 'text/event-stream',
          schema: z.string().describe('event: stdout|stderr|exit|error, data: JSON'),
        },
        ...errors,
      },
      handler: async ({ params, body, caller, reply, request }) => {
        const signal = clientGone(reply);
        // Set once the command starts; the cast keeps TypeScript from narrowing it to null.
        let events = null as EventStream | null;
        try {
          const exit = await exec.stream(
            caller,
            params.id,
            toRequest(body),
            {
              start: () => {
                events = new EventStream(reply);
              },
              stdout: (text) => events?.send('stdout', text),
              stderr: (text) => events?.send('stderr', text),
            },
            signal,
          );
          await events?.send('exit', { exit_code: exit.exitCode, duration_ms: exit.durationMs, timed_out: exit.timedOut });
        } catch (err) {
          if (!events) throw err;
          const known = err instanceof HangarError ? err : null;
          if (!known) request.log.error({ err }, 'exec stream failed');
          await events.send('error', {
            code: known?.code ?? 'INTERNAL',
            message: known?.message ?? 'An unexpected error occurred; it has been logged.',
          });
        } finally {
          events?.end();
        }
      },
    }),
  ];
}
