import type { z } from 'zod';
import { HangarError } from '../../domain/errors.js';
import { normaliseCwd } from '../../domain/machine.js';
import type { ExecRequest, ExecService } from '../../service/exec-service.js';
import { internalError } from '../error-mapping.js';
import { defineRoute, type AnyRoute } from '../route.js';
import { clientGone } from '../shared/client-gone.js';
import { EventStream } from '../shared/event-stream.js';
import { ErrorSchema } from '../shared/schemas.js';
import { ExecBody, ExecEventStreamSchema, ExecResultSchema, MachineParams } from './schemas.js';

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
      params: MachineParams,
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
      params: MachineParams,
      body: ExecBody,
      responses: {
        200: {
          description: 'Server-sent events: stdout, stderr, then exit.',
          contentType: 'text/event-stream',
          schema: ExecEventStreamSchema,
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
          const e = known ?? internalError();
          await events.send('error', { code: e.code, message: e.message });
        } finally {
          events?.end();
        }
      },
    }),
  ];
}
