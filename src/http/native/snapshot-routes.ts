import type { SnapshotRecord } from '../../domain/snapshot.js';
import type { MachineService } from '../../service/machine-service.js';
import { defineRoute, type AnyRoute } from '../route.js';
import { ErrorSchema } from '../shared/schemas.js';
import { renderMachine } from './machine-view.js';
import { MachineParams, MachineSchema, SnapshotListQuery, SnapshotListSchema, SnapshotParams, SnapshotSchema } from './schemas.js';

/** The API form of a snapshot. */
export function renderSnapshot(s: SnapshotRecord): Record<string, unknown> {
  return { id: s.id, machine_id: s.machineId, created_at: new Date(s.createdAt).toISOString(), size_bytes: s.sizeBytes, memory: s.memory, kind: s.kind };
}

const errors = {
  401: { description: 'Missing or unknown API key.', schema: ErrorSchema },
  404: { description: 'No such machine or snapshot for this team.', schema: ErrorSchema },
};

/** Pause, resume and snapshots. */
export function snapshotRoutes(service: MachineService): AnyRoute[] {
  return [
    defineRoute({
      method: 'POST',
      url: '/v1/machines/:id/pause',
      operationId: 'pauseMachine',
      summary: 'Pause a machine to a snapshot',
      description:
        'Checkpoints processes, memory, open files, listening sockets and the network namespace with CRIU, and moves the ' +
        'writable layer into the snapshot. The machine becomes paused with snapshot_id; its processes are gone from the host. ' +
        'Without CRIU the snapshot is filesystem-only (memory false) and resume restarts init.',
      tag: 'machines',
      auth: 'team',
      params: MachineParams,
      responses: {
        200: { description: 'The machine, paused.', schema: MachineSchema },
        ...errors,
        409: { description: 'Not running, or another operation is in progress.', schema: ErrorSchema },
        500: { description: 'SNAPSHOT_FAILED: the machine is still running, or in error with its data kept.', schema: ErrorSchema },
        507: { description: "STORAGE_FULL: the server's data dir had no room for the snapshot; the machine is still running.", schema: ErrorSchema },
      },
      handler: async ({ params, caller }) => renderMachine(await service.pause(caller, params.id), { now: service.now(), view: 'machine' }),
    }),
    defineRoute({
      method: 'POST',
      url: '/v1/machines/:id/resume',
      operationId: 'resumeMachine',
      summary: 'Resume a paused machine',
      description: 'Restores the snapshot: the same processes continue where they were. snapshot_id disappears; timers restart from now.',
      tag: 'machines',
      auth: 'team',
      params: MachineParams,
      responses: {
        200: { description: 'The machine, running.', schema: MachineSchema },
        ...errors,
        409: { description: 'Not paused, or another operation is in progress.', schema: ErrorSchema },
        500: { description: 'RESTORE_FAILED: the machine stays paused with its snapshot intact.', schema: ErrorSchema },
      },
      handler: async ({ params, caller }) => renderMachine(await service.resume(caller, params.id), { now: service.now(), view: 'machine' }),
    }),
    defineRoute({
      method: 'POST',
      url: '/v1/machines/:id/snapshots',
      operationId: 'snapshotMachine',
      summary: 'Snapshot a running machine without stopping it',
      description: 'The machine is frozen while its disk and memory are saved, then continues.',
      tag: 'snapshots',
      auth: 'team',
      params: MachineParams,
      status: 201,
      responses: {
        201: { description: 'The snapshot.', schema: SnapshotSchema },
        ...errors,
        409: { description: 'Not running, or another operation is in progress.', schema: ErrorSchema },
        500: { description: 'SNAPSHOT_FAILED: the machine is still running.', schema: ErrorSchema },
        507: { description: "STORAGE_FULL: the server's data dir had no room for the snapshot; the machine is still running.", schema: ErrorSchema },
      },
      handler: async ({ params, caller }) => renderSnapshot(await service.snapshot(caller, params.id)),
    }),
    defineRoute({
      method: 'GET',
      url: '/v1/snapshots',
      operationId: 'listSnapshots',
      summary: "List the team's snapshots, newest first",
      tag: 'snapshots',
      auth: 'team',
      query: SnapshotListQuery,
      responses: { 200: { description: 'Snapshots.', schema: SnapshotListSchema }, ...errors },
      handler: async ({ query, caller }) => ({ items: (await service.listSnapshots(caller, query.machine_id)).map(renderSnapshot) }),
    }),
    defineRoute({
      method: 'GET',
      url: '/v1/snapshots/:id',
      operationId: 'getSnapshot',
      summary: 'Get a snapshot',
      tag: 'snapshots',
      auth: 'team',
      params: SnapshotParams,
      responses: { 200: { description: 'The snapshot.', schema: SnapshotSchema }, ...errors },
      handler: async ({ params, caller }) => renderSnapshot(await service.getSnapshot(caller, params.id)),
    }),
    defineRoute({
      method: 'DELETE',
      url: '/v1/snapshots/:id',
      operationId: 'deleteSnapshot',
      summary: 'Delete a snapshot',
      description: 'A snapshot that holds a paused machine cannot be deleted (409): resume or destroy the machine.',
      tag: 'snapshots',
      auth: 'team',
      params: SnapshotParams,
      status: 204,
      responses: { 204: { description: 'Deleted.' }, ...errors, 409: { description: 'In use by a paused machine.', schema: ErrorSchema } },
      handler: async ({ params, caller }) => {
        await service.deleteSnapshot(caller, params.id);
      },
    }),
  ];
}
