import { z } from 'zod';
import { SNAPSHOT_KINDS } from '../../domain/snapshot.js';
import {
  AUTO_SNAPSHOT_FREQUENCIES,
  AUTO_SNAPSHOT_MAX_KEEP,
  CONFIG_LIMITS,
  MACHINE_STATUSES,
  METADATA_MAX_BYTES,
  TIMEOUT_ACTIONS,
  TIMEOUT_LIMITS,
} from '../../domain/machine.js';
import { parseCidr } from '../../domain/network.js';
import { intBetween } from '../validation.js';

/** Fields a `fields` mask may name (seed 000). */
export const MASKABLE_FIELDS = [
  'id', 'status', 'config', 'template', 'metadata', 'started_at', 'timeout_ms', 'timeout_at', 'expires_at',
  'timeout_action', 'created_at', 'cwd', 'snapshot_id', 'traffic_access_token',
] as const;

export const ErrorSchema = z
  .object({
    code: z.string().describe('Stable UPPER_SNAKE code from the error catalogue.'),
    message: z.string().describe('A sentence saying what went wrong and what to fix.'),
    details: z.record(z.string(), z.unknown()).optional(),
  })
  .meta({ id: 'Error' });

export const ConfigSchema = z
  .object({
    vcpus: intBetween(CONFIG_LIMITS.vcpus.min, CONFIG_LIMITS.vcpus.max).describe('CPU quota in whole CPUs.'),
    memory_mb: intBetween(CONFIG_LIMITS.memory_mb.min, CONFIG_LIMITS.memory_mb.max).describe('Memory limit in MiB.'),
    disk_mb: intBetween(CONFIG_LIMITS.disk_mb.min, CONFIG_LIMITS.disk_mb.max).describe('Writable layer size in MiB.'),
  })
  .meta({ id: 'MachineConfig' });

const metadataSchema = z
  .record(z.string(), z.unknown())
  .refine((m) => Buffer.byteLength(JSON.stringify(m)) <= METADATA_MAX_BYTES, {
    message: `must be at most ${METADATA_MAX_BYTES} bytes of JSON`,
  });

const envSchema = z
  .record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/, 'keys must be environment variable names ([A-Za-z_][A-Za-z0-9_]*)'), z.string().max(32_768).refine((v) => !v.includes('\0'), 'must not contain NUL'))
  .refine((e) => Object.keys(e).length <= 256, 'must have at most 256 variables');

const cidrSchema = z.string().max(18).superRefine((v, ctx) => {
  const parsed = parseCidr(v);
  if ('error' in parsed) ctx.addIssue({ code: 'custom', message: `"${v}" ${parsed.error}` });
});

export const NetworkSchema = z
  .strictObject({
    outbound: z.enum(['allow', 'deny']).optional().describe('What a destination outside the host gets when no list names it. @default "allow"'),
    allow: z.array(cidrSchema).max(64).optional().describe('With outbound "deny": the only IPv4 networks the machine may reach, e.g. ["203.0.113.0/24"].'),
    deny: z.array(cidrSchema).max(64).optional().describe('With outbound "allow": IPv4 networks the machine may not reach.'),
  })
  .superRefine((n, ctx) => {
    const mode = n.outbound ?? 'allow';
    if (mode === 'allow' && n.allow !== undefined) ctx.addIssue({ code: 'custom', path: ['allow'], message: 'only with outbound "deny" (with "allow" everything is allowed; list exceptions in deny)' });
    if (mode === 'deny' && n.deny !== undefined) ctx.addIssue({ code: 'custom', path: ['deny'], message: 'only with outbound "allow" (with "deny" everything is denied; list exceptions in allow)' });
  })
  .meta({ id: 'MachineNetwork' })
  .describe('The machine\'s outbound access. Other machines, the host and 169.254.0.0/16 are never reachable.');

export const CreateMachineBody = z
  .strictObject({
    template: z.string().min(1).max(64).optional().describe('Template ref. @default "base"'),
    config: ConfigSchema.partial().strict().optional().describe('Resources; omitted values take the defaults (1 vCPU, 512 MiB, 1024 MiB disk).'),
    metadata: metadataSchema.optional().describe('Any JSON object up to 16 KiB, stored verbatim.'),
    timeout_ms: intBetween(TIMEOUT_LIMITS.min, TIMEOUT_LIMITS.max).optional().describe('Hard deadline from start. @default 300000'),
    timeout_action: z.enum(TIMEOUT_ACTIONS).optional().describe('What happens at the deadline. @default "destroy"'),
    inactivity_timeout_ms: intBetween(TIMEOUT_LIMITS.min, TIMEOUT_LIMITS.max).nullable().optional(),
    auto_delete_after_ms: intBetween(0, TIMEOUT_LIMITS.max).nullable().optional(),
    ephemeral: z.boolean().optional().describe('Destroyed (never hibernated) on inactivity. @default false'),
    cwd: z.string().min(1).max(4096).regex(/^\//, 'must be an absolute path').optional(),
    env: envSchema.optional(),
    snapshot_id: z.string().min(1).max(128).optional().describe('Start from this snapshot: a fork with its own id, network and writable layer, its processes restored. template, config.disk_mb, env and cwd come from the snapshot.'),
    volumes: z.array(z.unknown()).optional().describe('Volumes to attach (not available yet: 422).'),
    network: NetworkSchema.optional(),
    public: z.boolean().optional().describe('Ingress (/v1/machines/{id}/ports/{port}/...) without a traffic access token. @default false'),
    auto_resume: z.boolean().optional().describe('Ingress traffic (HTTP or WebSocket) to the machine while it is paused resumes it instead of answering 409. @default false'),
    auto_snapshot: z
      .strictObject({
        frequency: z.enum(AUTO_SNAPSHOT_FREQUENCIES).describe('Period between automatic snapshots (a month is 30 days).'),
        keep: intBetween(1, AUTO_SNAPSHOT_MAX_KEEP).describe(`How many automatic snapshots to keep, 1 to ${AUTO_SNAPSHOT_MAX_KEEP}; the oldest beyond are deleted.`),
      })
      .optional()
      .describe('Take a live snapshot (kind "auto") every period while the machine runs; none while it is paused. @default off'),
  })
  .meta({ id: 'CreateMachineRequest' });

export const TimeoutBody = z.strictObject({
  timeout_ms: intBetween(TIMEOUT_LIMITS.min, TIMEOUT_LIMITS.max).describe('New deadline: now + timeout_ms.'),
});

/** Body of PATCH /v1/machines/{id}: a resize of a running machine. */
export const UpdateMachineBody = z
  .strictObject({
    config: ConfigSchema.partial()
      .strict()
      .refine((c) => Object.keys(c).length > 0, 'must name at least one of vcpus, memory_mb, disk_mb')
      .describe('New resources of the running machine; omitted ones stay. disk_mb only grows.'),
  })
  .meta({ id: 'UpdateMachineRequest' });

export const IdParams = z.object({ id: z.string().min(1).max(128).describe('Machine id, e.g. mch_a1b2c3d4.') });

export const FieldsQuery = z.object({
  fields: z.string().optional().describe(`Comma-separated field mask. Supported: ${MASKABLE_FIELDS.join(', ')}.`),
});

export const ListQuery = z.object({
  state: z.string().optional().describe(`Comma-separated states: ${MACHINE_STATUSES.join(', ')}.`),
  limit: z.coerce.number().int().min(1).max(100).optional().describe('Page size, 1 to 100. @default 100'),
  next_token: z.string().optional().describe('Cursor from the previous page.'),
  template: z.string().optional().describe('Exact template ref.'),
  metadata: z.string().optional().describe('JSON object whose key/value pairs must all equal the machine metadata\'s.'),
  fields: FieldsQuery.shape.fields,
});

const WarmPoolCheckoutSchema = z.object({ hit: z.boolean(), id: z.string() });

export const MachineSchema = z
  .object({
    id: z.string(),
    status: z.enum(MACHINE_STATUSES),
    config: ConfigSchema,
    template: z.string(),
    created_at: z.string(),
    metadata: z.record(z.string(), z.unknown()),
    started_at: z.string().optional(),
    timeout_ms: z.number().int(),
    timeout_at: z.string(),
    expires_at: z.string().describe('Alias of timeout_at.'),
    remaining_ms: z.number().int().describe('Milliseconds until timeout_at at response time, clamped at 0.'),
    timeout_action: z.enum(TIMEOUT_ACTIONS),
    last_active_at: z.string().nullable().optional().describe('Absent until the first activity.'),
    inactivity_timeout_ms: z.number().int().nullable().optional(),
    auto_delete_after_ms: z.number().int().nullable().optional(),
    ephemeral: z.boolean(),
    cwd: z.string().optional().describe('Present when one was configured.'),
    snapshot_id: z.string().optional().describe('Present only while paused.'),
    warm_pool_checkout: WarmPoolCheckoutSchema.optional(),
    traffic_access_token: z.string().optional().describe('Returned by create, and by get/list when named in fields.'),
    error_reason: z.string().optional().describe('Why the machine is in error; present only then.'),
    private_ip: z.string().optional().describe('Its IPv4 address on the server\'s private machine network; present while it is creating, running or paused.'),
    network: NetworkSchema.optional().describe('The outbound policy it was created with.'),
    public: z.boolean().optional().describe('Present (true) when its ports take ingress without a traffic access token.'),
    auto_resume: z.boolean().optional().describe('Present (true) when ingress traffic resumes it while it is paused.'),
    created_by: z.string().optional().describe('The user whose key created it; absent when a team key did.'),
    auto_snapshot: z
      .object({
        frequency: z.enum(AUTO_SNAPSHOT_FREQUENCIES),
        keep: z.number().int(),
        next_at: z.string().describe('When the next automatic snapshot is due (taken at the first sweep after it while running).'),
      })
      .optional()
      .describe('Present when automatic snapshots are on.'),
    restore_point_snapshot_id: z.string().optional().describe('Present when the machine has a restore point: each pause (stop) reverts it to this snapshot.'),
  })
  .meta({ id: 'Machine' });

export const SandboxSchema = MachineSchema.pick({
  id: true, status: true, config: true, template: true, created_at: true, metadata: true, started_at: true,
  timeout_ms: true, timeout_at: true, expires_at: true, timeout_action: true, cwd: true, snapshot_id: true,
  warm_pool_checkout: true, traffic_access_token: true, error_reason: true,
}).meta({ id: 'Sandbox' });

/** A machine with some fields masked away: any subset. */
export const MaskedMachineSchema = MachineSchema.partial();

export const MachinePageSchema = z.object({ items: z.array(MaskedMachineSchema), next_token: z.string().nullable() });
export const SandboxPageSchema = z.object({ items: z.array(SandboxSchema.partial()), next_token: z.string().nullable() });

export const SnapshotSchema = z
  .object({
    id: z.string(),
    machine_id: z.string().describe('The machine it was taken from.'),
    created_at: z.string(),
    size_bytes: z.number().int().describe('Bytes on disk (memory images and the sparse writable layer).'),
    memory: z.boolean().describe('True when processes and memory were saved (CRIU); false: filesystem only, a start restarts init.'),
    kind: z
      .enum(SNAPSHOT_KINDS)
      .describe(
        'Why it exists: pause (a paused machine\'s state), manual (POST /v1/machines/{id}/snapshots), auto (the machine\'s auto-snapshot schedule; ' +
          'the oldest beyond its keep count are deleted), initial (taken right after create), restore_point (taken when a restore point was enabled).',
      ),
  })
  .meta({ id: 'Snapshot' });

export const SnapshotListQuery = z.object({
  machine_id: z.string().optional().describe('Only snapshots taken from this machine.'),
});
