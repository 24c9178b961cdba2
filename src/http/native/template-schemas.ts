/**
 * Schemas of the template routes (issue 10): build requests, templates, builds and
 * uploads. They validate the requests and generate the OpenAPI document.
 */
import { z } from 'zod';
import { BUILD_LIMITS, TEMPLATE_NAME_PATTERN } from '../../domain/template.js';
import { DEBIAN_SUITES } from '../../templates/sources.js';
import { dateTime } from '../shared/schemas.js';
import { intBetween } from '../validation.js';

const noNul = (v: string): boolean => !v.includes('\0');
const command = (what: string) =>
  z.string().min(1).max(BUILD_LIMITS.commandBytes).refine(noNul, 'must not contain NUL').describe(what);
const absolutePath = (what: string) =>
  z
    .string()
    .min(1)
    .max(4096)
    .regex(/^\//, 'must be an absolute path')
    .refine((p) => !p.split('/').includes('..'), 'must not contain ".."')
    .refine(noNul, 'must not contain NUL')
    .describe(what);
const envRecord = z
  .record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/, 'keys must be environment variable names'), z.string().max(32_768).refine(noNul, 'must not contain NUL'))
  .refine((e) => Object.keys(e).length <= 256, 'must have at most 256 variables');
const uploadId = z.string().regex(/^upl_[a-z0-9]{16}$/, 'must be an upload id from POST /v1/uploads (upl_…)');
const packageName = z.string().regex(/^[a-z0-9][a-z0-9+.-]{0,99}(=[A-Za-z0-9.+:~-]{1,100})?$/, 'must be a Debian package name, optionally =version');

export const TemplateSourceSchema = z
  .union([
    z.strictObject({
      debian: z.strictObject({
        suite: z.enum(DEBIAN_SUITES).describe('Debian suite, fetched from the mirror apt on the server is configured with.'),
        packages: z.array(packageName).max(BUILD_LIMITS.packages).default([]).describe('Packages installed with the suite (mmdebstrap --include).'),
      }),
    }),
    z.strictObject({
      image: z
        .strictObject({
          upload_id: uploadId.optional().describe('An OCI archive, OCI layout tar or docker archive sent with POST /v1/uploads.'),
          path: absolutePath('Admins only: an image archive or OCI layout directory on the server.').optional(),
        })
        .refine((i) => (i.upload_id === undefined) !== (i.path === undefined), 'give exactly one of upload_id and path'),
    }),
    z.strictObject({ template: z.string().regex(TEMPLATE_NAME_PATTERN, 'must be a template name').describe('Layer on this template (its current version).') }),
  ])
  .describe('Where the root filesystem starts: exactly one of debian, image, template.')
  .meta({ id: 'TemplateSource' });

export const BuildStepSchema = z
  .union([
    z.strictObject({ run: command('Shell commands (/bin/sh -c) in the build machine, as the current user, with outbound network.') }),
    z.strictObject({ copy: z.strictObject({ upload_id: uploadId, dest: absolutePath('Directory the tar is extracted into (made if missing).') }) }),
    z.strictObject({ env: envRecord.describe('Variables for later steps and for every machine of the template.') }),
    z.strictObject({ workdir: absolutePath('Working directory of later steps and of machines (made if missing).') }),
    z.strictObject({
      user: z.string().regex(/^([a-z_][a-z0-9_-]{0,31}|\d{1,10}(:\d{1,10})?)$/, 'must be a user name or uid[:gid]').describe('User of later steps and default user of commands.'),
    }),
  ])
  .describe('Exactly one of run, copy, env, workdir, user.')
  .meta({ id: 'BuildStep' });

export const BuildTemplateBody = z
  .strictObject({
    name: z.string().regex(TEMPLATE_NAME_PATTERN, 'must be 1-63 of a-z, 0-9, ".", "_", "-", starting with a letter or digit').describe('Template name; a rebuild of a name makes its next version.'),
    description: z.string().max(1000).default(''),
    source: TemplateSourceSchema,
    steps: z.array(BuildStepSchema).max(BUILD_LIMITS.steps).default([]),
    start_cmd: command('Started once the steps are done; the template keeps a memory snapshot of it running, and every create resumes it.').optional(),
    ready_cmd: command('With start_cmd: run until it exits 0 before the snapshot is taken (every 100 ms).').optional(),
    ready_timeout_ms: intBetween(BUILD_LIMITS.readyTimeoutMs.min, BUILD_LIMITS.readyTimeoutMs.max).default(BUILD_LIMITS.readyTimeoutMs.default),
    timeout_ms: intBetween(BUILD_LIMITS.timeoutMs.min, BUILD_LIMITS.timeoutMs.max).default(BUILD_LIMITS.timeoutMs.default).describe('The whole build gives up after this long.'),
    server_wide: z.boolean().default(false).describe('Admins only: a template every team sees.'),
  })
  .refine((b) => b.ready_cmd === undefined || b.start_cmd !== undefined, { message: 'ready_cmd needs start_cmd', path: ['ready_cmd'] })
  .meta({ id: 'BuildTemplateRequest' });

export const TemplateParams = z.object({ name: z.string().min(1).max(64).describe('Template name.') });
export const BuildParams = TemplateParams.extend({ build_id: z.string().min(1).max(64).describe('Build id (bld_…).') });

export const TemplateListQuery = z.object({
  limit: z.coerce.number().int().min(1).max(100).optional().describe('Page size, 1 to 100. @default 100'),
  next_token: z.string().optional().describe('Cursor from the previous page.'),
});

export const BuildLogQuery = z.object({
  after: z.coerce.number().int().min(0).optional().describe('Only lines after this line number (also read from Last-Event-ID).'),
});

export const TemplateBuildSchema = z
  .object({
    id: z.string(),
    template: z.string(),
    version: z.number().int(),
    status: z.enum(['building', 'ready', 'error']),
    error: z.object({ step: z.string(), message: z.string() }).nullable().describe('The failing step and what happened; null unless status is error.'),
    created_at: dateTime(),
    finished_at: dateTime().nullable(),
    logs_url: z.string().describe('The build log (SSE with Accept: text/event-stream, plain text otherwise).'),
  })
  .meta({ id: 'TemplateBuild' });

export const TemplateSchema = z
  .object({
    name: z.string(),
    scope: z.enum(['team', 'server']).describe('team: only its team sees it; server: every team does (admins change it).'),
    kind: z.enum(['built', 'directory']).describe('built: made by POST /v1/templates; directory: shipped with the server (base, desktop, python, node).'),
    status: z.enum(['ready', 'building', 'error', 'not_built']).describe('Of its newest build; not_built: an on-demand server template, built on first use (1-2 min).'),
    description: z.string(),
    version: z.number().int().nullable().describe('The current version (what a create gets); null when none is ready yet.'),
    created_at: dateTime().nullable(),
    layers: z.number().int().nullable().describe('Overlay layers of the current version.'),
    size_bytes: z.number().int().nullable().describe('Bytes of the layers this version added (shared layers are stored once).'),
    start_snapshot: z.boolean().describe('Creates resume a snapshot of the running start_cmd.'),
    start_pid: z.number().int().nullable().describe('The start command\'s pid inside every machine of the template.'),
    latest_build: TemplateBuildSchema.nullable(),
  })
  .meta({ id: 'Template' });

export const TemplatePageSchema = z.object({ items: z.array(TemplateSchema), next_token: z.string().nullable() });

export const UploadSchema = z
  .object({ upload_id: z.string(), size_bytes: z.number().int(), expires_at: dateTime() })
  .meta({ id: 'Upload' });
