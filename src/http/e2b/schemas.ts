/**
 * Every schema of the E2B surface: the control API's request bodies and queries (E2B's
 * OpenAPI spec, as the SDK sends them) and envd's Connect messages in their JSON form
 * (proto3 JSON: lowerCamelCase names, bytes as base64, enums by name or number).
 */
import { z } from 'zod';
import { ConnectError } from './connect-wire.js';

/** POST /v2/sandboxes. Fields the SDK may send that Hangar cannot honour are refused by the handler, by name. */
export const NewSandboxBody = z.object({
  templateID: z.string().min(1).max(128),
  timeout: z.number().int().min(1).max(30 * 24 * 3600).optional(),
  metadata: z.record(z.string(), z.string()).optional(),
  envVars: z.record(z.string(), z.string()).optional(),
  autoPause: z.boolean().optional(),
  autoPauseMemory: z.boolean().optional(),
  autoResume: z.object({ enabled: z.boolean() }).optional(),
  secure: z.boolean().optional(),
  allow_internet_access: z.boolean().optional(),
  network: z.record(z.string(), z.unknown()).optional(),
  mcp: z.unknown().optional(),
  iam: z.unknown().optional(),
  volumeMounts: z.array(z.unknown()).optional(),
});

/** POST /sandboxes/{id}/timeout. */
export const TimeoutBody = z.object({ timeout: z.number().int().min(0).max(30 * 24 * 3600) });

/** POST /v2/sandboxes/{id}/connect and /sandboxes/{id}/resume. */
export const ConnectBody = z.object({
  timeout: z.number().int().min(1).max(30 * 24 * 3600).optional(),
  memory: z.boolean().optional(),
  autoPause: z.boolean().optional(),
});

/** POST /sandboxes/{id}/pause. */
export const PauseBody = z.object({ memory: z.boolean().optional() });

/** GET /v2/sandboxes (metadata is a query string of its own: `k=v&k2=v2`, each part URL-encoded). */
export const ListSandboxesQuery = z.object({
  metadata: z.string().optional(),
  state: z.string().optional(),
  template: z.string().optional(),
  limit: z.coerce.number().int().min(1).max(100).optional(),
  nextToken: z.string().optional(),
  order: z.string().optional(),
  startedAfter: z.string().optional(),
});

/** POST /sandboxes/{id}/fork. */
export const ForkBody = z.object({ timeout: z.number().int().min(1).max(30 * 24 * 3600).optional(), count: z.number().int().min(1).max(16).optional() });

/** GET /snapshots. */
export const SnapshotListQuery = z.object({
  sandboxID: z.string().optional(),
  name: z.string().optional(),
  limit: z.coerce.number().int().min(1).max(100).optional(),
  nextToken: z.string().optional(),
});

/** A template (or snapshot) id in a path. */
export const TemplateParams = z.object({ templateID: z.string().min(1).max(128) });

/** A sandbox id in a path. */
export const SandboxParams = z.object({ sandboxID: z.string().min(1).max(128) });

const Bytes = z.string().transform((s) => Buffer.from(s, 'base64'));
const Uint = z.union([z.number(), z.string()]).transform(Number).pipe(z.number().int().min(0));

/** process.ProcessSelector. */
export const ProcessSelector = z.union([z.object({ pid: Uint }), z.object({ tag: z.string() })]);

/** process.StartRequest. */
export const StartRequest = z.object({
  process: z.object({
    cmd: z.string().min(1),
    args: z.array(z.string()).default([]),
    envs: z.record(z.string(), z.string()).default({}),
    cwd: z.string().optional(),
  }),
  pty: z.object({ size: z.object({ cols: Uint, rows: Uint }) }).optional(),
  tag: z.string().optional(),
  stdin: z.boolean().optional(),
});

/** process.ConnectRequest, process.CloseStdinRequest. */
export const SelectorRequest = z.object({ process: ProcessSelector });

/** process.SendInputRequest. */
export const SendInputRequest = z.object({
  process: ProcessSelector,
  input: z.union([z.object({ stdin: Bytes }), z.object({ pty: Bytes })]),
});

/** process.SendSignalRequest (SIGNAL_SIGTERM = 15, SIGNAL_SIGKILL = 9). */
export const SendSignalRequest = z.object({
  process: ProcessSelector,
  signal: z.union([z.enum(['SIGNAL_SIGTERM', 'SIGNAL_SIGKILL']), z.literal(15), z.literal(9)]),
});

/** process.UpdateRequest. */
export const UpdateRequest = z.object({
  process: ProcessSelector,
  pty: z.object({ size: z.object({ cols: Uint, rows: Uint }) }).optional(),
});

/** filesystem requests naming one path. */
export const PathRequest = z.object({ path: z.string() });

/** filesystem.ListDirRequest. */
export const ListDirRequest = z.object({ path: z.string(), depth: Uint.optional() });

/** filesystem.MoveRequest. */
export const MoveRequest = z.object({ source: z.string(), destination: z.string() });

/** filesystem.WatchDirRequest. */
export const WatchDirRequest = z.object({
  path: z.string(),
  recursive: z.boolean().optional(),
  includeEntry: z.boolean().optional(),
  allowNetworkMounts: z.boolean().optional(),
});

/** GET and POST /files. */
export const FilesQuery = z.object({ path: z.string().optional(), username: z.string().optional() });

/** Parse an envd message, or answer `invalid_argument` naming the first problem. */
export function parseMessage<T extends z.ZodType>(schema: T, value: unknown): z.output<T> {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  throw new ConnectError('invalid_argument', `Invalid request message: ${issue ? `${issue.path.join('.') || '(message)'}: ${issue.message}` : 'malformed'}.`);
}
