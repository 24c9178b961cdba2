import type { AccessorService } from '../../service/accessor-service.js';
import type { PaperspaceService } from '../../service/paperspace-service.js';
import type { MachineOperations } from '../../service/machine-operations.js';
import { defineRoute, type AnyRoute } from '../route.js';
import { refuseUnsupported, renderPaperspaceAccessor, renderPaperspaceEvent, renderPaperspaceMachine } from './machine-view.js';
import {
  AccessorListQuery,
  AccessorPageSchema,
  AccessorParams,
  AddAccessorBody,
  CreateBody,
  DesktopSettingsSchema,
  EventListQuery,
  EventPageSchema,
  IdParams,
  MachineListQuery,
  MachinePageSchema,
  MachineWithEventSchema,
  PaperspaceAccessorSchema,
  PaperspaceErrorSchema,
  PaperspaceEventSchema,
  PaperspaceMachineSchema,
  UpdateBody,
} from './schemas.js';

/** The OpenAPI tag of every route of this surface. */
const PAPERSPACE_TAG = 'paperspace';
const DEFAULT_LIMIT = 20;

const errors = {
  400: { description: 'Invalid request (VALIDATION_FAILED, INVALID_JSON, INVALID_NEXT_TOKEN).', schema: PaperspaceErrorSchema },
  401: { description: 'Missing or unknown API key.', schema: PaperspaceErrorSchema },
  404: { description: 'No such machine or event for this team.', schema: PaperspaceErrorSchema },
};
const conflict = { 409: { description: 'The machine is not in a state for this, or another operation on it is in flight.', schema: PaperspaceErrorSchema } };

/** What the Paperspace-style routes need. */
export interface PaperspaceRoutesOptions {
  paperspace: PaperspaceService;
  accessors: AccessorService;
  operations: MachineOperations;
  /** Where the surface is mounted, e.g. /paperspace/v1. */
  basePath: string;
}

/** The Paperspace-style machines API (seed 002): machines, their operations and events. */
export function paperspaceRoutes({ paperspace, accessors, operations, basePath }: PaperspaceRoutesOptions): AnyRoute[] {
  const base = { tag: PAPERSPACE_TAG, auth: 'team' as const };
  const withEvent = (r: { machine: Parameters<typeof renderPaperspaceMachine>[0]; event: Parameters<typeof renderPaperspaceEvent>[0] }) => ({
    data: renderPaperspaceMachine(r.machine),
    event: renderPaperspaceEvent(r.event),
  });
  const lifecycle = (verb: 'start' | 'stop' | 'restart', summary: string, description: string): AnyRoute =>
    defineRoute({
      ...base,
      method: 'PATCH',
      url: `${basePath}/machines/:id/${verb}`,
      operationId: `paperspace${verb[0]!.toUpperCase()}${verb.slice(1)}Machine`,
      summary,
      description,
      params: IdParams,
      responses: { 200: { description: 'The machine and the event to poll.', schema: MachineWithEventSchema }, ...errors, ...conflict },
      handler: async ({ params, caller }) => withEvent(await paperspace[verb](caller, params.id)),
    });

  return [
    defineRoute({
      ...base,
      method: 'GET',
      url: `${basePath}/machine-events`,
      operationId: 'paperspaceListMachineEvents',
      summary: 'List machine events',
      description: 'The team\'s machine events by dtCreated (newest first by default), optionally of one machine.',
      query: EventListQuery,
      responses: { 200: { description: 'A page of events.', schema: EventPageSchema }, ...errors },
      handler: async ({ query, caller }) => {
        const page = await operations.list(caller, {
          machineId: query.machineId,
          order: query.order ?? 'desc',
          limit: query.limit ?? DEFAULT_LIMIT,
          after: query.after,
        });
        return { hasMore: page.hasMore, items: page.items.map(renderPaperspaceEvent), nextPage: page.nextPage };
      },
    }),
    defineRoute({
      ...base,
      method: 'GET',
      url: `${basePath}/machine-events/:id`,
      operationId: 'paperspaceGetMachineEvent',
      summary: 'Get a machine event',
      params: IdParams,
      responses: { 200: { description: 'The event.', schema: PaperspaceEventSchema }, ...errors },
      handler: async ({ params, caller }) => renderPaperspaceEvent(await operations.get(caller, params.id)),
    }),
    defineRoute({
      ...base,
      method: 'GET',
      url: `${basePath}/machines`,
      operationId: 'paperspaceListMachines',
      summary: 'List machines',
      description: 'The team\'s machines (deleted ones aside), filtered by exact name, region, agentType and machineType.',
      query: MachineListQuery,
      responses: { 200: { description: 'A page of machines.', schema: MachinePageSchema }, ...errors },
      handler: async ({ query, caller }) => {
        const page = await paperspace.list(caller, {
          after: query.after,
          limit: query.limit ?? DEFAULT_LIMIT,
          orderBy: query.orderBy ?? 'dtCreated',
          order: query.order ?? 'desc',
          name: query.name,
          region: query.region,
          agentType: query.agentType,
          machineType: query.machineType,
        });
        return { hasMore: page.hasMore, items: page.items.map(renderPaperspaceMachine), nextPage: page.nextPage };
      },
    }),
    defineRoute({
      ...base,
      method: 'POST',
      url: `${basePath}/machines`,
      operationId: 'paperspaceCreateMachine',
      summary: 'Create a machine',
      description:
        'Answers at once with the machine (provisioning) and its create event; poll the event until done or error. ' +
        'takeInitialSnapshot (and restorePointEnabled, which makes it the restore point) snapshots the machine once it runs, before the event is done.',
      body: CreateBody,
      responses: {
        200: { description: 'The machine and the event to poll.', schema: MachineWithEventSchema },
        ...errors,
        422: { description: 'A feature not supported yet was asked for (UNSUPPORTED_OPERATION), or startupScriptId or networkId names no script or network of the team (UNKNOWN_STARTUP_SCRIPT, UNKNOWN_NETWORK).', schema: PaperspaceErrorSchema },
        429: { description: 'Server at capacity.', schema: PaperspaceErrorSchema },
      },
      handler: async ({ body, caller }) => {
        // networkId is served on a create (refuseUnsupported refuses it on an update only).
        refuseUnsupported({ ...body, networkId: undefined });
        return withEvent(
          await paperspace.create(caller, {
            name: body.name,
            machineType: body.machineType,
            templateId: body.templateId,
            region: body.region,
            diskSize: body.diskSize,
            autoShutdownEnabled: body.autoShutdownEnabled,
            autoShutdownTimeout: body.autoShutdownTimeout,
            startOnCreate: body.startOnCreate,
            accessorIds: body.accessorIds,
            autoSnapshot: body,
            takeInitialSnapshot: body.takeInitialSnapshot,
            restorePointEnabled: body.restorePointEnabled,
            restorePointFrequency: body.restorePointFrequency,
            startupScriptId: body.startupScriptId,
            networkId: body.networkId,
          }),
        );
      },
    }),
    defineRoute({
      ...base,
      method: 'GET',
      url: `${basePath}/machines/:id`,
      operationId: 'paperspaceGetMachine',
      summary: 'Get a machine',
      params: IdParams,
      responses: { 200: { description: 'The machine.', schema: PaperspaceMachineSchema }, ...errors },
      handler: async ({ params, caller }) => renderPaperspaceMachine(await paperspace.get(caller, params.id)),
    }),
    defineRoute({
      ...base,
      method: 'PUT',
      url: `${basePath}/machines/:id`,
      operationId: 'paperspaceUpdateMachine',
      summary: 'Update a machine',
      description:
        'Name, auto shutdown, auto snapshots and the restore point, applied before the answer (the event is already done). ' +
        'Enabling a restore point without restorePointSnapshotId snapshots the ready machine now. ' +
        'A running machine is resized in place: a new machineType changes its vCPUs and memory at once, a larger diskSize grows its disk ' +
        '(the processes are checkpointed around the grow); a smaller diskSize is a 422 and a stopped machine a 409, with nothing changed.',
      params: IdParams,
      body: UpdateBody,
      responses: {
        200: { description: 'The machine and the update event.', schema: MachineWithEventSchema },
        ...errors,
        ...conflict,
        422: {
          description:
            'A smaller diskSize, or a field only accepted when off (UNSUPPORTED_OPERATION), or a restorePointSnapshotId that is not a snapshot of this machine (UNKNOWN_SNAPSHOT).',
          schema: PaperspaceErrorSchema,
        },
        500: { description: 'SNAPSHOT_FAILED: the restore point snapshot could not be taken; nothing changed and the machine is still ready.', schema: PaperspaceErrorSchema },
      },
      handler: async ({ params, body, caller }) => {
        refuseUnsupported(body);
        return withEvent(
          await paperspace.update(caller, params.id, {
            name: body.name,
            machineType: body.machineType,
            diskSize: body.diskSize,
            autoShutdownEnabled: body.autoShutdownEnabled,
            autoShutdownTimeout: body.autoShutdownTimeout,
            autoSnapshot: body,
            restorePointEnabled: body.restorePointEnabled,
            restorePointFrequency: body.restorePointFrequency,
            restorePointSnapshotId: body.restorePointSnapshotId,
          }),
        );
      },
    }),
    defineRoute({
      ...base,
      method: 'DELETE',
      url: `${basePath}/machines/:id`,
      operationId: 'paperspaceDeleteMachine',
      summary: 'Delete a machine',
      description: 'Answers at once with the machine and its delete event; the machine is destroyed in the background.',
      params: IdParams,
      responses: { 200: { description: 'The machine and the event to poll.', schema: MachineWithEventSchema }, ...errors, ...conflict },
      handler: async ({ params, caller }) => withEvent(await paperspace.delete(caller, params.id)),
    }),
    defineRoute({
      ...base,
      method: 'GET',
      url: `${basePath}/machines/:id/accessors`,
      operationId: 'paperspaceListAccessors',
      summary: 'List accessors',
      description: 'The team members granted this machine explicitly (removed ones aside), by user id.',
      params: IdParams,
      query: AccessorListQuery,
      responses: { 200: { description: 'A page of accessors.', schema: AccessorPageSchema }, ...errors },
      handler: async ({ params, query, caller }) => {
        const page = await accessors.list(caller, params.id, { after: query.after, limit: query.limit ?? DEFAULT_LIMIT, order: query.order ?? 'desc' });
        return { hasMore: page.hasMore, items: page.items.map(renderPaperspaceAccessor), nextPage: page.nextPage };
      },
    }),
    defineRoute({
      ...base,
      method: 'POST',
      url: `${basePath}/machines/:id/accessors`,
      operationId: 'paperspaceAddAccessor',
      summary: 'Add an accessor',
      description: "Grants a user of the team this machine. Only the machine's creator and team admins (and team keys) may.",
      params: IdParams,
      body: AddAccessorBody,
      responses: {
        200: { description: 'The accessor.', schema: PaperspaceAccessorSchema },
        ...errors,
        403: { description: "Neither the machine's creator nor a team admin (FORBIDDEN).", schema: PaperspaceErrorSchema },
        ...conflict,
      },
      handler: async ({ params, body, caller }) => renderPaperspaceAccessor(await accessors.add(caller, params.id, body.userId)),
    }),
    defineRoute({
      ...base,
      method: 'GET',
      url: `${basePath}/machines/:id/accessors/:userId`,
      operationId: 'paperspaceGetAccessor',
      summary: 'Get an accessor',
      params: AccessorParams,
      responses: { 200: { description: 'The accessor.', schema: PaperspaceAccessorSchema }, ...errors },
      handler: async ({ params, caller }) => renderPaperspaceAccessor(await accessors.get(caller, params.id, params.userId)),
    }),
    defineRoute({
      ...base,
      method: 'DELETE',
      url: `${basePath}/machines/:id/accessors/:userId`,
      operationId: 'paperspaceDeleteAccessor',
      summary: 'Delete an accessor',
      description: 'Removes the access; the answer carries dtDeleted. The user then gets 404 for the machine.',
      params: AccessorParams,
      responses: {
        200: { description: 'The removed accessor.', schema: PaperspaceAccessorSchema },
        ...errors,
        403: { description: "Neither the machine's creator nor a team admin (FORBIDDEN).", schema: PaperspaceErrorSchema },
      },
      handler: async ({ params, caller }) => renderPaperspaceAccessor(await accessors.remove(caller, params.id, params.userId)),
    }),
    defineRoute({
      ...base,
      method: 'GET',
      url: `${basePath}/machines/:id/desktop`,
      operationId: 'paperspaceGetMachineDesktop',
      summary: 'Get desktop settings',
      description: 'VNC settings of a ready machine whose template runs a desktop (templateId "desktop"): its private address, port and password.',
      params: IdParams,
      responses: {
        200: { description: 'The VNC settings.', schema: DesktopSettingsSchema },
        ...errors,
        409: { description: 'The machine is not ready (stopped: start it first; or an operation is in flight) (STATE_CONFLICT).', schema: PaperspaceErrorSchema },
        422: { description: 'The machine\'s template runs no desktop (NO_DESKTOP).', schema: PaperspaceErrorSchema },
      },
      handler: async ({ params, caller }) => paperspace.desktop(caller, params.id),
    }),
    lifecycle('start', 'Start a machine', 'Resumes a stopped machine from its memory snapshot: the same processes continue.'),
    lifecycle(
      'stop',
      'Stop a machine',
      'Pauses a ready machine to a memory snapshot (CRIU); its processes leave the host. With a restore point, the stopped machine is then ' +
        'reverted to it: the next start resumes the restore point\'s memory and disk.',
    ),
    lifecycle('restart', 'Restart a machine', 'Kills every process and starts the template\'s init again; the files are kept.'),
  ];
}
