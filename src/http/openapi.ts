import { z } from 'zod';
import { ERROR_CATALOGUE } from '../domain/errors.js';
import type { AnyRoute } from './route.js';

type Json = Record<string, unknown>;

/** Named schemas (`.meta({id})`) collected while generating; they become components. */
let components: Record<string, Json> = {};

function rewriteRefs(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(rewriteRefs);
  if (v && typeof v === 'object') {
    const out: Json = {};
    for (const [k, x] of Object.entries(v)) {
      out[k] = k === '$ref' && typeof x === 'string' ? x.replace('#/$defs/', '#/components/schemas/') : rewriteRefs(x);
    }
    return out;
  }
  return v;
}

function jsonSchema(schema: z.ZodType, io: 'input' | 'output'): Json {
  const out = rewriteRefs(z.toJSONSchema(schema, { io, target: 'draft-2020-12', unrepresentable: 'any' })) as Json;
  delete out.$schema;
  const defs = out.$defs as Record<string, Json> | undefined;
  delete out.$defs;
  // Input and output forms of one named schema can differ (defaults); the output form names the component.
  for (const [name, def] of Object.entries(defs ?? {})) if (io === 'output' || !components[name]) components[name] = def;
  return out;
}

function parametersOf(schema: z.ZodType | undefined, where: 'path' | 'query'): Json[] {
  if (!schema) return [];
  const s = jsonSchema(schema, 'input');
  const props = (s.properties ?? {}) as Record<string, Json>;
  const required = new Set((s.required ?? []) as string[]);
  return Object.entries(props).map(([name, p]) => {
    const { description, ...rest } = p;
    return { name, in: where, required: where === 'path' || required.has(name), ...(description ? { description } : {}), schema: rest };
  });
}

/** The OpenAPI 3.1 document of a set of routes, generated from the schemas that validate them. */
export function buildOpenApi(routes: readonly AnyRoute[], info: { title: string; version: string }): Json {
  components = {};
  const paths: Record<string, Record<string, Json>> = {};
  for (const r of routes) {
    const path = r.url.replace(/:([A-Za-z_]+)/g, '{$1}');
    const responses: Record<string, Json> = {};
    for (const [status, resp] of Object.entries(r.responses)) {
      responses[status] = {
        description: resp.description,
        ...(resp.schema ? { content: { [resp.contentType ?? 'application/json']: { schema: jsonSchema(resp.schema, 'output') } } } : {}),
      };
    }
    const op: Json = {
      operationId: r.operationId,
      summary: r.summary,
      ...(r.description ? { description: r.description } : {}),
      tags: [r.tag],
      parameters: [
        ...parametersOf(r.params, 'path'),
        ...parametersOf(r.query, 'query'),
        ...(r.headers ?? []).map((h) => ({ name: h.name, in: 'header', required: false, description: h.description, schema: { type: 'string' } })),
      ],
      responses,
      ...(r.auth === 'public' ? { security: [] } : {}),
    };
    if (r.body) op.requestBody = { required: false, content: { 'application/json': { schema: jsonSchema(r.body, 'input') } } };
    if (r.rawBody) {
      const content = (op.requestBody as { content?: Json } | undefined)?.content ?? {};
      content[r.rawBody.contentType] = { schema: { type: 'string', format: 'binary', description: r.rawBody.description } };
      op.requestBody = { required: false, content };
    }
    if (r.streamBody) {
      op.requestBody = { required: true, description: r.streamBody.description, content: { [r.streamBody.contentType]: { schema: { type: 'string', format: 'binary' } } } };
    }
    (paths[path] ??= {})[r.method.toLowerCase()] = op;
  }
  return {
    openapi: '3.1.0',
    info: {
      ...info,
      description:
        'Hangar: real, isolated Linux machines behind an HTTP API. Errors are `{code, message, details?}`; ' +
        `the codes are: ${Object.entries(ERROR_CATALOGUE).map(([c, e]) => `${c} (${e.status})`).join(', ')}.`,
    },
    components: { schemas: Object.fromEntries(Object.entries(components).sort(([a], [b]) => a.localeCompare(b))), securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'An API key.' } } },
    security: [{ bearer: [] }],
    paths,
  };
}
