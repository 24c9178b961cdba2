/**
 * E2B's control API as fuzzer operations. Its routes follow E2B's spec and are not in
 * Hangar's OpenAPI document, so they are listed here, their schemas read from the zod
 * schemas the routes validate with. Their errors have E2B's shape: `{code: <status>, message}`.
 */
import { z } from 'zod';
import { ConnectBody, ForkBody, ListSandboxesQuery, NewSandboxBody, PauseBody, SnapshotListQuery, TimeoutBody } from '../../http/e2b/schemas.js';
import type { JsonSchema, Operation } from './openapi-arbitraries.js';

/** The JSON Schema of a zod schema, as the request side sees it. */
function schemaOf(schema: z.ZodType): JsonSchema {
  return z.toJSONSchema(schema, { io: 'input', target: 'draft-2020-12', unrepresentable: 'any' }) as JsonSchema;
}

const json = (schema: z.ZodType): Operation['body'] => ({ mediaType: 'application/json', schema: schemaOf(schema) });
const path = (name: string): Operation['parameters'][number] => ({ name, in: 'path', required: true, schema: { type: 'string' } });
const queryOf = (schema: z.ZodObject): Operation['parameters'] =>
  Object.entries((schemaOf(schema).properties ?? {}) as Record<string, JsonSchema>).map(([name, s]) => ({ name, in: 'query', required: false, schema: s }));

/** Every route of E2B's control API that Hangar serves. */
export function e2bOperations(): Operation[] {
  const sandbox = [path('sandboxID')];
  const op = (method: string, p: string, parameters: Operation['parameters'], body: Operation['body'] = null): Operation => ({ method, path: p, parameters, body, errorShape: 'e2b' });
  return [
    op('POST', '/v2/sandboxes', [], json(NewSandboxBody)),
    op('POST', '/sandboxes', [], json(NewSandboxBody)),
    op('GET', '/v2/sandboxes', queryOf(ListSandboxesQuery)),
    op('GET', '/sandboxes', []),
    op('GET', '/sandboxes/{sandboxID}', sandbox),
    op('DELETE', '/sandboxes/{sandboxID}', sandbox),
    op('POST', '/sandboxes/{sandboxID}/timeout', sandbox, json(TimeoutBody)),
    op('POST', '/sandboxes/{sandboxID}/pause', sandbox, json(PauseBody)),
    op('POST', '/v2/sandboxes/{sandboxID}/connect', sandbox, json(ConnectBody)),
    op('POST', '/sandboxes/{sandboxID}/resume', sandbox, json(ConnectBody)),
    op('POST', '/sandboxes/{sandboxID}/snapshots', sandbox),
    op('GET', '/snapshots', queryOf(SnapshotListQuery)),
    op('DELETE', '/templates/{templateID}', [path('templateID')]),
    op('POST', '/sandboxes/{sandboxID}/fork', sandbox, json(ForkBody)),
    op('GET', '/sandboxes/{sandboxID}/metrics', sandbox),
    op('PUT', '/sandboxes/{sandboxID}/network', sandbox, { mediaType: 'application/json', schema: { type: 'object' } }),
  ];
}
