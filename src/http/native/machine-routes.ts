import { HangarError } from '../../domain/errors.js';
import { normaliseCwd } from '../../domain/machine.js';
import type { MachineService } from '../../service/machine-service.js';
import type { StartupScriptRuns } from '../../service/startup-script-runs.js';
import { defineRoute, type AnyRoute } from '../route.js';
import { parseFields, parseListQuery, renderMachine, type MachineView } from './machine-view.js';
import { outboundPolicy } from './network-view.js';
import { ErrorSchema } from '../shared/schemas.js';
import {
  CreateMachineBody,
  FieldMaskQuery,
  MachineListQuery,
  MachineListSchema,
  MachineParams,
  MachineSchema,
  MachineTimeoutBody,
  MaskedMachineSchema,
  MaskedSandboxSchema,
  SandboxListSchema,
  UpdateMachineBody,
} from './schemas.js';

const errors = {
  400: { description: 'Invalid request (VALIDATION_FAILED, INVALID_JSON, INVALID_NEXT_TOKEN).', schema: ErrorSchema },
  401: { description: 'Missing or unknown API key.', schema: ErrorSchema },
  404: { description: 'No such machine for this team.', schema: ErrorSchema },
};

/** The native machines API (seed 000/001) and the legacy sandboxes view (seed 003). */
export function machineRoutes(service: MachineService, startupScripts: StartupScriptRuns): AnyRoute[] {
  const listRoute = (view: MachineView, url: string): AnyRoute =>
    defineRoute({
      method: 'GET',
      url,
      operationId: view === 'machine' ? 'listMachines' : 'listSandboxes',
      summary: view === 'machine' ? 'List machines' : 'List sandboxes (legacy view)',
      description:
        'Without state, limit, next_token, template, metadata or fields: the legacy bare array of every live machine. ' +
        'With any of them: `{items, next_token}`, newest first, keyset-paginated.',
      tag: view === 'machine' ? 'machines' : 'sandboxes',
      auth: 'team',
      query: MachineListQuery,
      responses: {
        200: {
          description: 'A bare array (legacy form) or a page.',
          schema: view === 'machine' ? MachineListSchema : SandboxListSchema,
        },
        ...errors,
      },
      handler: async ({ query, caller }) => {
        const { input, fields } = parseListQuery(query);
        const page = await service.list(caller, input);
        const now = service.now();
        const withToken = fields?.includes('traffic_access_token') ?? false;
        const items = page.items.map((m) =>
          renderMachine(m, { now, view, fields, trafficToken: withToken ? service.trafficToken(m.id) : undefined }),
        );
        return input.paginated ? { items, next_token: page.nextToken } : items;
      },
    });

  const getRoute = (view: MachineView, url: string): AnyRoute =>
    defineRoute({
      method: 'GET',
      url,
      operationId: view === 'machine' ? 'getMachine' : 'getSandbox',
      summary: view === 'machine' ? 'Get a machine' : 'Get a sandbox (legacy view)',
      tag: view === 'machine' ? 'machines' : 'sandboxes',
      auth: 'team',
      params: MachineParams,
      query: FieldMaskQuery,
      responses: { 200: { description: 'The machine.', schema: view === 'machine' ? MaskedMachineSchema : MaskedSandboxSchema }, ...errors },
      handler: async ({ params, query, caller }) => {
        const fields = parseFields(query.fields);
        const m = await service.get(caller, params.id);
        const withToken = fields?.includes('traffic_access_token') ?? false;
        return renderMachine(m, { now: service.now(), view, fields, trafficToken: withToken ? service.trafficToken(m.id) : undefined });
      },
    });

  return [
    defineRoute({
      method: 'POST',
      url: '/v1/machines',
      operationId: 'createMachine',
      summary: 'Create a machine',
      description: 'Starts a real machine from a template and answers once it is running. The response carries traffic_access_token.',
      tag: 'machines',
      auth: 'team',
      body: CreateMachineBody,
      headers: [{ name: 'Idempotency-Key', description: 'A retried create with the same key and body returns the first machine.' }],
      status: 201,
      responses: {
        201: { description: 'The machine, running.', schema: MachineSchema },
        ...errors,
        409: { description: 'Idempotency-Key reused with another body; VOLUME_IN_USE: a volume to attach read-write is read-write in another live machine, or a fork of a machine with a read-write volume.', schema: ErrorSchema },
        413: { description: 'Body too large.', schema: ErrorSchema },
        422: { description: 'Unknown template, snapshot, volume (UNKNOWN_VOLUME), startup script (UNKNOWN_STARTUP_SCRIPT) or network (UNKNOWN_NETWORK): nothing is created; or a feature not available on this server.', schema: ErrorSchema },
        429: { description: 'Server at capacity.', schema: ErrorSchema },
      },
      handler: async ({ body, caller, request }) => {
        let cwd: string | undefined;
        if (body.cwd !== undefined) {
          const n = normaliseCwd(body.cwd);
          if (n === null) throw new HangarError('VALIDATION_FAILED', 'Invalid request. cwd: must be an absolute path without NUL bytes', { fields: [{ field: 'cwd', message: 'must be an absolute path' }] });
          cwd = n;
        }
        const rawKey = request.headers['idempotency-key'];
        const idemKey = typeof rawKey === 'string' ? rawKey : undefined;
        if (idemKey !== undefined && (idemKey.length === 0 || idemKey.length > 255)) {
          throw new HangarError('VALIDATION_FAILED', 'Invalid request. Idempotency-Key: must be 1 to 255 characters', {
            fields: [{ field: 'header.Idempotency-Key', message: 'must be 1 to 255 characters' }],
          });
        }
        const m = await service.create(
          caller,
          {
            template: body.template,
            config: body.config,
            metadata: body.metadata,
            timeoutMs: body.timeout_ms,
            timeoutAction: body.timeout_action,
            inactivityTimeoutMs: body.inactivity_timeout_ms,
            autoDeleteAfterMs: body.auto_delete_after_ms,
            ephemeral: body.ephemeral,
            cwd,
            env: body.env,
            snapshotId: body.snapshot_id,
            outbound: body.network === undefined ? undefined : outboundPolicy(body.network),
            public: body.public,
            autoResume: body.auto_resume,
            autoSnapshot: body.auto_snapshot,
            volumes: body.volumes?.map((v) => ({ volumeId: v.volume_id, mountPath: v.mount_path, readOnly: v.read_only ?? false })),
            startupScriptId: body.startup_script_id,
            networkId: body.network_id,
            isolation: body.isolation,
          },
          idemKey,
        );
        // Started (its event recorded) before the answer; a retried create does not run it again.
        await startupScripts.afterStart(caller, m, 'create');
        return renderMachine(m, { now: service.now(), view: 'machine', trafficToken: service.trafficToken(m.id) });
      },
    }),
    listRoute('machine', '/v1/machines'),
    getRoute('machine', '/v1/machines/:id'),
    defineRoute({
      method: 'DELETE',
      url: '/v1/machines/:id',
      operationId: 'destroyMachine',
      summary: 'Destroy a machine',
      description: 'Kills its processes and removes its mounts, cgroups, network namespace and files.',
      tag: 'machines',
      auth: 'team',
      params: MachineParams,
      responses: {
        200: { description: 'The machine, destroyed.', schema: MachineSchema },
        ...errors,
        409: { description: 'Already destroyed, or another operation is in progress.', schema: ErrorSchema },
      },
      handler: async ({ params, caller }) => renderMachine(await service.destroy(caller, params.id), { now: service.now(), view: 'machine' }),
    }),
    defineRoute({
      method: 'PATCH',
      url: '/v1/machines/:id',
      operationId: 'updateMachine',
      summary: 'Resize a running machine',
      description:
        'Changes the CPU quota and memory limit of the running machine at once and grows its disk (the file system too), ' +
        'then saves config; recorded as an update event. A refused or failed resize changes nothing.',
      tag: 'machines',
      auth: 'team',
      params: MachineParams,
      body: UpdateMachineBody,
      responses: {
        200: { description: 'The machine with its new config.', schema: MachineSchema },
        ...errors,
        409: { description: 'The machine is not running (start it first), another operation is in progress, or it uses more memory than the new memory_mb.', schema: ErrorSchema },
        422: { description: 'A smaller disk_mb (disks only grow), or a disk this server cannot grow.', schema: ErrorSchema },
        500: { description: 'The runtime failed; the message says whether the machine still runs as it was.', schema: ErrorSchema },
      },
      handler: async ({ params, body, caller }) =>
        renderMachine(await service.update(caller, params.id, { config: body.config }), { now: service.now(), view: 'machine' }),
    }),
    defineRoute({
      method: 'POST',
      url: '/v1/machines/:id/timeout',
      operationId: 'setMachineTimeout',
      summary: 'Refresh the hard deadline',
      description: 'Sets timeout_at = now + timeout_ms (and timeout_ms to the new value).',
      tag: 'machines',
      auth: 'team',
      params: MachineParams,
      body: MachineTimeoutBody,
      responses: {
        200: { description: 'The machine.', schema: MachineSchema },
        ...errors,
        409: { description: 'The machine is not running.', schema: ErrorSchema },
      },
      handler: async ({ params, body, caller }) =>
        renderMachine(await service.refreshTimeout(caller, params.id, body.timeout_ms), { now: service.now(), view: 'machine' }),
    }),
    listRoute('sandbox', '/v1/sandboxes'),
    getRoute('sandbox', '/v1/sandboxes/:id'),
  ];
}
