import type { VolumeService } from '../../service/volume-service.js';
import { defineRoute, type AnyRoute } from '../route.js';
import { ErrorSchema } from '../shared/schemas.js';
import { CreateVolumeBody, VolumeListSchema, VolumeParams, VolumeSchema } from './schemas.js';
import { renderVolume } from './volume-view.js';

const errors = {
  401: { description: 'Missing or unknown API key.', schema: ErrorSchema },
  404: { description: 'No such volume for this team.', schema: ErrorSchema },
};

/** The team's volumes: create, list, get, delete. Attaching is part of a machine's create. */
export function volumeRoutes(service: VolumeService): AnyRoute[] {
  return [
    defineRoute({
      method: 'POST',
      url: '/v1/volumes',
      operationId: 'createVolume',
      summary: 'Create a volume',
      description:
        'Makes an empty ext4 file system of exactly size_mb (a sparse file on the host: unwritten space costs nothing). ' +
        'Attach it with `volumes` on POST /v1/machines. It outlives its machines and is deleted only by DELETE.',
      tag: 'volumes',
      auth: 'team',
      body: CreateVolumeBody,
      status: 201,
      responses: {
        201: { description: 'The volume.', schema: VolumeSchema },
        400: { description: 'Invalid request (VALIDATION_FAILED, INVALID_JSON).', schema: ErrorSchema },
        401: errors[401],
        409: { description: 'VOLUME_NAME_TAKEN: the team already has a volume of this name.', schema: ErrorSchema },
        429: { description: 'CAPACITY_EXCEEDED: the team has 100 volumes.', schema: ErrorSchema },
      },
      handler: async ({ body, caller }) => renderVolume(await service.create(caller, { name: body.name, sizeMb: body.size_mb })),
    }),
    defineRoute({
      method: 'GET',
      url: '/v1/volumes',
      operationId: 'listVolumes',
      summary: "List the team's volumes, newest first",
      description: 'Every volume of the team (a team has at most 100, so there is no paging), each with the live machines it is attached to.',
      tag: 'volumes',
      auth: 'team',
      responses: { 200: { description: 'Volumes.', schema: VolumeListSchema }, 401: errors[401] },
      handler: async ({ caller }) => ({ items: (await service.list(caller)).map(renderVolume) }),
    }),
    defineRoute({
      method: 'GET',
      url: '/v1/volumes/:id',
      operationId: 'getVolume',
      summary: 'Get a volume',
      tag: 'volumes',
      auth: 'team',
      params: VolumeParams,
      responses: { 200: { description: 'The volume.', schema: VolumeSchema }, ...errors },
      handler: async ({ params, caller }) => renderVolume(await service.get(caller, params.id)),
    }),
    defineRoute({
      method: 'DELETE',
      url: '/v1/volumes/:id',
      operationId: 'deleteVolume',
      summary: 'Delete a volume and its data',
      description: 'Refused (409 VOLUME_IN_USE, naming the machines) while any live machine has it attached, paused and stopped ones included: destroy them first.',
      tag: 'volumes',
      auth: 'team',
      params: VolumeParams,
      status: 204,
      responses: { 204: { description: 'Deleted.' }, ...errors, 409: { description: 'VOLUME_IN_USE: attached to a live machine.', schema: ErrorSchema } },
      handler: async ({ params, caller }) => {
        await service.delete(caller, params.id);
      },
    }),
  ];
}
