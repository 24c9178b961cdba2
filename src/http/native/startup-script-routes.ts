import type { StartupScriptService } from '../../service/startup-script-service.js';
import { defineRoute, type AnyRoute } from '../route.js';
import { ErrorSchema } from '../shared/schemas.js';
import { CreateStartupScriptBody, StartupScriptListSchema, StartupScriptParams, StartupScriptSchema } from './schemas.js';
import { renderStartupScript } from './startup-script-view.js';

const errors = {
  401: { description: 'Missing or unknown API key.', schema: ErrorSchema },
  404: { description: 'No such startup script for this team.', schema: ErrorSchema },
};

/**
 * The team's startup scripts: create, list, get, delete. There is no update: a machine
 * keeps a copy of its script from its create, so a new version is a new script.
 */
export function startupScriptRoutes(service: StartupScriptService): AnyRoute[] {
  return [
    defineRoute({
      method: 'POST',
      url: '/v1/startup-scripts',
      operationId: 'createStartupScript',
      summary: 'Create a startup script',
      description:
        'Keeps a shell script for the team. Name it with startup_script_id on POST /v1/machines (startupScriptId on the Paperspace-style create): ' +
        'the machine keeps a copy and runs it with /bin/sh -c after its first start (run_once: true) or after every start (run_once: false).',
      tag: 'startup-scripts',
      auth: 'team',
      body: CreateStartupScriptBody,
      status: 201,
      responses: {
        201: { description: 'The script.', schema: StartupScriptSchema },
        400: { description: 'Invalid request (VALIDATION_FAILED, INVALID_JSON): e.g. a script over 64 KiB.', schema: ErrorSchema },
        401: errors[401],
        429: { description: 'CAPACITY_EXCEEDED: the team has 100 startup scripts.', schema: ErrorSchema },
      },
      handler: async ({ body, caller }) => renderStartupScript(await service.create(caller, { name: body.name, script: body.script, runOnce: body.run_once })),
    }),
    defineRoute({
      method: 'GET',
      url: '/v1/startup-scripts',
      operationId: 'listStartupScripts',
      summary: "List the team's startup scripts, newest first",
      description: 'Every startup script of the team (a team has at most 100, so there is no paging).',
      tag: 'startup-scripts',
      auth: 'team',
      responses: { 200: { description: 'Startup scripts.', schema: StartupScriptListSchema }, 401: errors[401] },
      handler: async ({ caller }) => ({ items: (await service.list(caller)).map(renderStartupScript) }),
    }),
    defineRoute({
      method: 'GET',
      url: '/v1/startup-scripts/:id',
      operationId: 'getStartupScript',
      summary: 'Get a startup script',
      tag: 'startup-scripts',
      auth: 'team',
      params: StartupScriptParams,
      responses: { 200: { description: 'The script.', schema: StartupScriptSchema }, ...errors },
      handler: async ({ params, caller }) => renderStartupScript(await service.get(caller, params.id)),
    }),
    defineRoute({
      method: 'DELETE',
      url: '/v1/startup-scripts/:id',
      operationId: 'deleteStartupScript',
      summary: 'Delete a startup script',
      description: 'Machines created with it keep their copy and still run it.',
      tag: 'startup-scripts',
      auth: 'team',
      params: StartupScriptParams,
      status: 204,
      responses: { 204: { description: 'Deleted.' }, ...errors },
      handler: async ({ params, caller }) => {
        await service.delete(caller, params.id);
      },
    }),
  ];
}
