/**
 * Every schema of the native surface (seeds 000, 001, 003; exec, processes, terminals, files;
 * /healthz and /v1/info): they validate the requests and generate the OpenAPI document.
 * Named ones (`.meta({id})`) are OpenAPI components: renaming an id changes the document.
 */
import { z } from 'zod';
import { FILE_TYPES, MAX_FILE_PATH_LENGTH, normaliseFilePath } from '../../domain/file-entry.js';
import { SNAPSHOT_KINDS } from '../../domain/snapshot.js';
import { STARTUP_SCRIPT_LIMITS } from '../../domain/startup-script.js';
import { MAX_NETWORKS_PER_TEAM, NETWORK_NAME_PATTERN } from '../../domain/private-network.js';
import { ATTACHMENT_STATES, RESERVED_MOUNT_PATHS, VOLUME_LIMITS, VOLUME_NAME_PATTERN } from '../../domain/volume.js';
import {
  AUTO_SNAPSHOT_FREQUENCIES,
  ISOLATIONS,
  AUTO_SNAPSHOT_MAX_KEEP,
  MACHINE_STATUSES,
  METADATA_MAX_BYTES,
  TIMEOUT_ACTIONS,
  TIMEOUT_LIMITS,
} from '../../domain/machine.js';
import { parseCidr } from '../../domain/network.js';
import { PROCESS_SIGNALS, type ProcessSignal } from '../../runtime/runtime.js';
import { DEFAULT_EXEC_TIMEOUT_MS } from '../../service/exec-service.js';
import { PROCESS_OUTPUT_LIMIT_BYTES } from '../../service/process-service.js';
import { dateTime, int64, MachineConfigSchema } from '../shared/schemas.js';
import { intBetween } from '../validation.js';

/** Fields a `fields` mask may name (seed 000). */
export const MASKABLE_FIELDS = [
  'id', 'status', 'config', 'template', 'metadata', 'started_at', 'timeout_ms', 'timeout_at', 'expires_at',
  'timeout_action', 'created_at', 'cwd', 'snapshot_id', 'traffic_access_token',
] as const;

/** A query flag: true, false, 1 or 0; absent is false. */
const booleanQueryFlag = z
  .enum(['true', 'false', '1', '0'])
  .optional()
  .transform((v) => v === 'true' || v === '1');

// ---- Machines and sandboxes ----

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

/** A machine's outbound access (create's `network`, and the machine's). */
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

/** One volume to attach in POST /v1/machines. */
export const VolumeAttachmentRequestSchema = z
  .strictObject({
    volume_id: z.string().min(1).max(128).describe('A volume of the team (GET /v1/volumes), e.g. vol_a1b2c3d4.'),
    mount_path: z
      .string()
      .min(1)
      .max(VOLUME_LIMITS.mountPathMaxLength)
      .describe(
        `Absolute directory inside the machine, normalised (\`/a/../b/\` is /b) and made if missing; not /, not ${RESERVED_MOUNT_PATHS.join(', ')} or below them, ` +
          'not inside (or around) another volume of the machine.',
      ),
    read_only: z.boolean().optional().describe('Mount read-only. A volume is read-write in at most one live machine, read-only in any number. @default false'),
  })
  .meta({ id: 'VolumeAttachmentRequest' });

/** Body of POST /v1/machines. */
export const CreateMachineBody = z
  .strictObject({
    template: z.string().min(1).max(64).optional().describe('Template ref. @default "base"'),
    config: MachineConfigSchema.partial().strict().optional().describe('Resources; omitted values take the defaults (1 vCPU, 512 MiB, 1024 MiB disk).'),
    metadata: metadataSchema.optional().describe('Any JSON object up to 16 KiB, stored verbatim.'),
    timeout_ms: intBetween(TIMEOUT_LIMITS.min, TIMEOUT_LIMITS.max).optional().describe('Hard deadline from start. @default 300000'),
    timeout_action: z.enum(TIMEOUT_ACTIONS).optional().describe('What happens at the deadline. @default "destroy"'),
    inactivity_timeout_ms: intBetween(TIMEOUT_LIMITS.min, TIMEOUT_LIMITS.max).nullable().optional(),
    auto_delete_after_ms: intBetween(0, TIMEOUT_LIMITS.max).nullable().optional(),
    ephemeral: z.boolean().optional().describe('Destroyed (never hibernated) on inactivity. @default false'),
    cwd: z.string().min(1).max(4096).regex(/^\//, 'must be an absolute path').optional(),
    env: envSchema.optional(),
    snapshot_id: z.string().min(1).max(128).optional().describe('Start from this snapshot: a fork with its own id, network and writable layer, its processes restored. template, config.disk_mb, env and cwd come from the snapshot.'),
    volumes: z
      .array(VolumeAttachmentRequestSchema)
      .max(VOLUME_LIMITS.perMachine)
      .optional()
      .describe(
        `Volumes to attach, at most ${VOLUME_LIMITS.perMachine}, for the machine's life (until it is destroyed); shown in metadata.volume_attachments in this order. ` +
          'Not with snapshot_id: a fork has its snapshot\'s (read-only) volumes. A machine with volumes never comes from a warm pool.',
      ),
    startup_script_id: z
      .string()
      .min(1)
      .max(128)
      .optional()
      .describe(
        'A startup script of the team (GET /v1/startup-scripts): the machine keeps a copy (a later delete of the script changes nothing) and runs it with /bin/sh -c ' +
          'as a background process once it runs, and again after each Paperspace-style start or restart (not after a resume) unless the script is run_once; each run is a startup-script event. Unknown: 422 UNKNOWN_STARTUP_SCRIPT.',
      ),
    network: NetworkSchema.optional(),
    network_id: z
      .string()
      .min(1)
      .max(128)
      .optional()
      .describe(
        'A private network of the team (GET /v1/networks), e.g. net_a1b2c3d4: the machine reaches the other machines on it, and they reach it, on their private_ip (any protocol). ' +
          'Fixed for the machine\'s life; a machine is on at most one network. An unknown one is 422 UNKNOWN_NETWORK. A fork joins the network named here, not its source\'s. ' +
          'A machine on a network never comes from a warm pool. @default none',
      ),
    public: z.boolean().optional().describe('Ingress (/v1/machines/{id}/ports/{port}/...) without a traffic access token. @default false'),
    auto_resume: z.boolean().optional().describe('Ingress traffic (HTTP or WebSocket) to the machine while it is paused resumes it instead of answering 409. @default false'),
    isolation: z
      .enum(ISOLATIONS)
      .optional()
      .describe(
        'Isolation tier: "container" (runc: the host kernel behind namespaces, capabilities, seccomp and cgroups) or "gvisor" (runsc: gVisor\'s user-space kernel inside the same). ' +
          'A gvisor machine cannot pause, hibernate, snapshot, fork or resize: with snapshot_id, timeout_action "hibernate", inactivity_timeout_ms without ephemeral, or auto_snapshot it is a 422 UNSUPPORTED_OPERATION. ' +
          'It never comes from a warm pool. See docs/security.md, Tiers. @default the template\'s isolation, else "container"',
      ),
    auto_snapshot: z
      .strictObject({
        frequency: z.enum(AUTO_SNAPSHOT_FREQUENCIES).describe('Period between automatic snapshots (a month is 30 days).'),
        keep: intBetween(1, AUTO_SNAPSHOT_MAX_KEEP).describe(`How many automatic snapshots to keep, 1 to ${AUTO_SNAPSHOT_MAX_KEEP}; the oldest beyond are deleted.`),
      })
      .optional()
      .describe('Take a live snapshot (kind "auto") every period while the machine runs; none while it is paused. @default off'),
  })
  .meta({ id: 'CreateMachineRequest' });

/** Body of POST /v1/machines/{id}/timeout. */
export const MachineTimeoutBody = z.strictObject({
  timeout_ms: intBetween(TIMEOUT_LIMITS.min, TIMEOUT_LIMITS.max).describe('New deadline: now + timeout_ms.'),
});

/** Body of PATCH /v1/machines/{id}: a resize of a running machine. */
export const UpdateMachineBody = z
  .strictObject({
    config: MachineConfigSchema.partial()
      .strict()
      .refine((c) => Object.keys(c).length > 0, 'must name at least one of vcpus, memory_mb, disk_mb')
      .describe('New resources of the running machine; omitted ones stay. disk_mb only grows.'),
  })
  .meta({ id: 'UpdateMachineRequest' });

/** Path of one machine. */
export const MachineParams = z.object({ id: z.string().min(1).max(128).describe('Machine id, e.g. mch_a1b2c3d4.') });

/** Query of GET /v1/machines/{id} (and the sandbox view). */
export const FieldMaskQuery = z.object({
  fields: z.string().optional().describe(`Comma-separated field mask. Supported: ${MASKABLE_FIELDS.join(', ')}.`),
});

/** Query of GET /v1/machines (and the sandbox view). */
export const MachineListQuery = z.object({
  state: z.string().optional().describe(`Comma-separated states: ${MACHINE_STATUSES.join(', ')}.`),
  limit: z.coerce.number().int().min(1).max(100).optional().describe('Page size, 1 to 100. @default 100'),
  next_token: z.string().optional().describe('Cursor from the previous page.'),
  template: z.string().optional().describe('Exact template ref.'),
  metadata: z.string().optional().describe('JSON object whose key/value pairs must all equal the machine metadata\'s.'),
  fields: FieldMaskQuery.shape.fields,
});

const WarmPoolCheckoutSchema = z.object({ hit: z.boolean(), id: z.string() });

/** A machine (seeds 000, 001). */
export const MachineSchema = z
  .object({
    id: z.string(),
    status: z.enum(MACHINE_STATUSES),
    config: MachineConfigSchema,
    template: z.string(),
    created_at: dateTime(),
    metadata: z
      .record(z.string(), z.unknown())
      .optional()
      .describe('Always sent. Stored verbatim; a machine with volumes also has volume_attachments here (VolumeAttachment items, in request order), which replaces a key of that name given at create.'),
    started_at: dateTime().optional().describe('Present once it has started.'),
    timeout_ms: int64().optional().describe('Always sent: the hard deadline\'s length in milliseconds.'),
    timeout_at: dateTime().optional().describe('Always sent: the hard deadline.'),
    expires_at: dateTime().optional().describe('Always sent: alias of timeout_at.'),
    remaining_ms: int64().optional().describe('Always sent: milliseconds until timeout_at at response time, clamped at 0.'),
    timeout_action: z.enum(TIMEOUT_ACTIONS).optional().describe('Always sent.'),
    last_active_at: dateTime().nullable().optional().describe('Absent until the first activity.'),
    inactivity_timeout_ms: int64().nullable().optional(),
    auto_delete_after_ms: int64().nullable().optional(),
    ephemeral: z.boolean().optional().describe('Always sent.'),
    cwd: z.string().optional().describe('Present when one was configured.'),
    snapshot_id: z.string().optional().describe('Present only while paused.'),
    warm_pool_checkout: WarmPoolCheckoutSchema.optional(),
    traffic_access_token: z.string().optional().describe('Returned by create, and by get/list when named in fields.'),
    error_reason: z.string().optional().describe('Why the machine is in error; present only then.'),
    private_ip: z.string().optional().describe('Its IPv4 address on the server\'s private machine network; present while it is creating, running or paused (a paused machine that moved to another host gets one of that host at its resume).'),
    network: NetworkSchema.optional().describe('The outbound policy it was created with.'),
    network_id: z.string().optional().describe('Present when it is on a private network (network_id at create): it reaches that network\'s other machines on their private_ip.'),
    public: z.boolean().optional().describe('Present (true) when its ports take ingress without a traffic access token.'),
    auto_resume: z.boolean().optional().describe('Present (true) when ingress traffic resumes it while it is paused.'),
    created_by: z.string().optional().describe('The user whose key created it; absent when a team key did.'),
    auto_snapshot: z
      .object({
        frequency: z.enum(AUTO_SNAPSHOT_FREQUENCIES),
        keep: z.number().int(),
        next_at: dateTime().describe('When the next automatic snapshot is due (taken at the first sweep after it while running).'),
      })
      .optional()
      .describe('Present when automatic snapshots are on.'),
    restore_point_snapshot_id: z.string().optional().describe('Present when the machine has a restore point: each pause (stop) reverts it to this snapshot.'),
    startup_script_id: z.string().optional().describe('Present when it was created with a startup script: the script its copy came from (which may since be deleted).'),
    startup_script_run_once: z.boolean().optional().describe('Present with startup_script_id: whether its copy runs only after the first start.'),
    isolation: z.enum(ISOLATIONS).optional().describe('Always sent: its isolation tier, fixed at its create.'),
  })
  .meta({ id: 'Machine' });

/** A machine in the legacy sandbox view (seed 003). */
export const SandboxSchema = MachineSchema.pick({
  id: true, status: true, config: true, template: true, created_at: true, metadata: true, started_at: true,
  timeout_ms: true, timeout_at: true, expires_at: true, timeout_action: true, cwd: true, snapshot_id: true,
  warm_pool_checkout: true, traffic_access_token: true, error_reason: true,
}).meta({ id: 'Sandbox' });

/** A machine with some fields masked away: any subset. */
export const MaskedMachineSchema = MachineSchema.partial();

/** A page of masked machines. */
export const MachinePageSchema = z.object({ items: z.array(MaskedMachineSchema), next_token: z.string().nullable() });

/** A sandbox with some fields masked away: any subset. */
export const MaskedSandboxSchema = SandboxSchema.partial();

/** A page of masked sandboxes. */
export const SandboxPageSchema = z.object({ items: z.array(MaskedSandboxSchema), next_token: z.string().nullable() });

/** The answer of GET /v1/machines: the legacy bare array, or a page. */
export const MachineListSchema = z.union([z.array(MachineSchema), MachinePageSchema]);

/** The answer of GET /v1/sandboxes: the legacy bare array, or a page. */
export const SandboxListSchema = z.union([z.array(SandboxSchema), SandboxPageSchema]);

// ---- Snapshots ----

/** A snapshot of a machine. */
export const SnapshotSchema = z
  .object({
    id: z.string(),
    machine_id: z.string().describe('The machine it was taken from.'),
    created_at: dateTime(),
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

/** Query of GET /v1/snapshots. */
export const SnapshotListQuery = z.object({
  machine_id: z.string().optional().describe('Only snapshots taken from this machine.'),
});

/** Path of one snapshot. */
export const SnapshotParams = z.object({ id: z.string().min(1).max(128) });

/** The answer of GET /v1/snapshots. */
export const SnapshotListSchema = z.object({ items: z.array(SnapshotSchema) });

// ---- Volumes ----

const ATTACHMENT_MODES = ['rw', 'ro'] as const;

/** One attachment of a machine, as metadata.volume_attachments lists it. */
export const VolumeAttachmentSchema = z
  .object({
    volume_id: z.string(),
    mount_path: z.string().describe('Where the volume is inside the machine (normalised).'),
    read_only: z.boolean(),
    mode: z.enum(ATTACHMENT_MODES).describe('rw or ro: read_only as a word.'),
    state: z
      .enum(ATTACHMENT_STATES)
      .describe('attached: the machine runs with the volume mounted; detached: it holds the attachment without running (creating, paused, error); released: the machine is destroyed.'),
  })
  .meta({ id: 'VolumeAttachment' });

/** Body of POST /v1/volumes. */
export const CreateVolumeBody = z
  .strictObject({
    name: z
      .string()
      .regex(VOLUME_NAME_PATTERN, `must be 1 to ${VOLUME_LIMITS.nameMaxLength} letters, digits, _, . or -, starting with a letter or digit`)
      .describe('Unique within the team.'),
    size_mb: intBetween(VOLUME_LIMITS.sizeMb.min, VOLUME_LIMITS.sizeMb.max).describe(
      `Hard size in MiB, ${VOLUME_LIMITS.sizeMb.min} to ${VOLUME_LIMITS.sizeMb.max}: writing past it fails inside the machine with ENOSPC.`,
    ),
  })
  .meta({ id: 'CreateVolumeRequest' });

/** A volume of the team. */
export const VolumeSchema = z
  .object({
    id: z.string().describe('vol_ + 16 lowercase letters and digits.'),
    name: z.string(),
    size_mb: z.number().int(),
    created_at: dateTime(),
    attachments: z
      .array(VolumeAttachmentSchema.omit({ volume_id: true }).extend({ machine_id: z.string() }))
      .describe('The live (not destroyed) machines it is attached to, oldest first.'),
  })
  .meta({ id: 'Volume' });

/** The answer of GET /v1/volumes. */
export const VolumeListSchema = z.object({ items: z.array(VolumeSchema).describe('Every volume of the team (at most 100), newest first.') });

/** Path of one volume. */
export const VolumeParams = z.object({ id: z.string().min(1).max(128).describe('Volume id, e.g. vol_a1b2c3d4.') });

const SCRIPT_BYTES = STARTUP_SCRIPT_LIMITS.scriptBytes;

/** Body of POST /v1/startup-scripts. */
export const CreateStartupScriptBody = z
  .strictObject({
    name: z.string().trim().min(1).max(STARTUP_SCRIPT_LIMITS.nameMaxLength).describe('A human name (need not be unique).'),
    script: z
      .string()
      .min(1)
      .max(SCRIPT_BYTES)
      .refine((text) => Buffer.byteLength(text, 'utf8') <= SCRIPT_BYTES, `must be at most ${SCRIPT_BYTES} bytes (UTF-8)`)
      .refine((text) => !text.includes('\0'), 'must not contain NUL bytes')
      .describe(`Shell text run inside the machine as root with /bin/sh -c, at most ${SCRIPT_BYTES} bytes (UTF-8).`),
    run_once: z
      .boolean()
      .optional()
      .describe('true: run only after the machine\'s first start; false: after every start (create, Paperspace-style start and restart; never a native resume). @default false'),
  })
  .meta({ id: 'CreateStartupScriptRequest' });

/** A startup script of the team. */
export const StartupScriptSchema = z
  .object({
    id: z.string().describe('scr_ + 16 lowercase letters and digits.'),
    name: z.string(),
    script: z.string(),
    run_once: z.boolean().describe('Decides when a machine runs it: true only after its first start, false after every start.'),
    created_at: dateTime(),
  })
  .meta({ id: 'StartupScript' });

/** The answer of GET /v1/startup-scripts. */
export const StartupScriptListSchema = z.object({
  items: z.array(StartupScriptSchema).describe(`Every startup script of the team (at most ${STARTUP_SCRIPT_LIMITS.perTeam}), newest first.`),
});

/** Path of one startup script. */
export const StartupScriptParams = z.object({ id: z.string().min(1).max(128).describe('Startup script id, e.g. scr_a1b2c3d4.') });

// ---- Exec ----

const noNul = (v: string): boolean => !v.includes('\0');
const MAX_UID = 4_294_967_294;

/** Body of both exec endpoints. */
export const ExecBody = z
  .strictObject({
    cmd: z
      .union(
        [
          z.array(z.string().refine(noNul, 'must not contain NUL')).min(1).refine((a) => a[0] !== '', 'the first item (the command) must not be empty'),
          z.string().min(1).refine(noNul, 'must not contain NUL'),
        ],
        { error: 'must be an array of strings (argv) or a string (run with /bin/sh -c)' },
      )
      .describe('Argv (the first item is looked up in PATH), or a shell string run with `/bin/sh -c`.'),
    cwd: z
      .string()
      .min(1)
      .max(4096)
      .regex(/^\//, 'must be an absolute path')
      .refine(noNul, 'must not contain NUL')
      .optional()
      .describe("Working directory. @default the machine's cwd, else its template's (/root for base)"),
    env: CreateMachineBody.shape.env.describe("Variables set over the machine's environment."),
    user: z
      .string()
      .regex(/^([A-Za-z_][A-Za-z0-9_.-]{0,31}\$?|\d{1,10}(:\d{1,10})?)$/, 'must be a user name or uid[:gid]')
      .refine((u) => !/^\d/.test(u) || u.split(':').every((n) => Number(n) <= MAX_UID), `ids must be at most ${MAX_UID}`)
      .optional()
      .describe('A user name (looked up inside the machine) or uid[:gid] (gid 0 when omitted). @default "root"'),
    stdin: z.string().optional().describe('Fed to the command as UTF-8, then closed. @default empty'),
    timeout_ms: intBetween(1, 3_600_000)
      .optional()
      .describe(`The command and everything it started are killed after this long; exit_code is then 124. @default ${DEFAULT_EXEC_TIMEOUT_MS}`),
  })
  .meta({ id: 'ExecRequest' });

/** The answer of a non-streamed exec. */
export const ExecResultSchema = z
  .object({
    exit_code: z.number().int().describe('127: no such command; 126: it could not be started (e.g. cwd missing); 124: timed out; 128+n: killed by signal n.'),
    stdout: z.string().describe('UTF-8 (invalid bytes become U+FFFD), at most 1 MiB.'),
    stderr: z.string().describe('UTF-8 (invalid bytes become U+FFFD), at most 1 MiB.'),
    stdout_truncated: z.boolean().describe('True when stdout went past 1 MiB; the rest was read and dropped.'),
    stderr_truncated: z.boolean(),
    duration_ms: z.number().int(),
    timed_out: z.literal(true).optional().describe('Present only when the command was killed at timeout_ms.'),
  })
  .meta({ id: 'ExecResult' });

/** The answer of a streamed exec, as the document describes a text/event-stream. */
export const ExecEventStreamSchema = z.string().describe('event: stdout|stderr|exit|error, data: JSON');

// ---- Background processes ----

const MAX_PROCESS_TIMEOUT_MS = 30 * 24 * 3_600_000;
const MAX_PROCESS_WAIT_MS = 300_000;
/** How long GET …/processes/{pid}?wait=true waits when timeout_ms is not given. */
export const DEFAULT_PROCESS_WAIT_MS = 30_000;

/** Body of POST /v1/machines/{id}/processes. */
export const StartProcessBody = z
  .strictObject({
    cmd: ExecBody.shape.cmd,
    cwd: ExecBody.shape.cwd,
    env: ExecBody.shape.env,
    user: ExecBody.shape.user,
    stdin: z.string().optional().describe('Written to stdin (UTF-8) as the process starts; stdin stays open unless close_stdin. @default nothing'),
    close_stdin: z.boolean().optional().describe('Close stdin once `stdin` is written: the process reads end-of-file. @default false'),
    timeout_ms: intBetween(1, MAX_PROCESS_TIMEOUT_MS)
      .optional()
      .describe('The process and everything it started are killed after this long; exit_code is then 124. @default no limit'),
  })
  .meta({ id: 'StartProcessRequest' });

/** A background process. */
export const ProcessSchema = z
  .object({
    pid: z.number().int().describe('The process id inside the machine (what `ps` there shows).'),
    status: z.enum(['running', 'exited']),
    cmd: z.union([z.array(z.string()), z.string()]).describe('As given when started.'),
    cwd: z.string(),
    user: z.string(),
    started_at: dateTime(),
    ended_at: dateTime().nullable().describe('Null while running.'),
    exit_code: z.number().int().nullable().describe('Null while running; 128+n when signal n killed it; 124 when killed at timeout_ms; 137 when a pause or the server ended it.'),
    signal: z.string().nullable().describe('Name of the signal that killed it (TERM, KILL, ...), when exit_code is 128+n; else null.'),
    timed_out: z.boolean(),
    stdin_open: z.boolean(),
    output_bytes: z.number().int().describe('Bytes of output so far, stdout and stderr together, dropped ones included: the end offset.'),
  })
  .meta({ id: 'Process' });

/** The answer of GET /v1/machines/{id}/processes. */
export const ProcessListSchema = z.object({ items: z.array(ProcessSchema) });

/** Path of one background process. */
export const ProcessParams = MachineParams.extend({
  pid: z.coerce.number().int().min(1).max(4_194_304).describe('Process id inside the machine, as returned by start.'),
});

/** Query of GET /v1/machines/{id}/processes/{pid}. */
export const GetProcessQuery = z.object({
  wait: booleanQueryFlag.describe('Answer only once the process has exited, or timeout_ms passed. @default false'),
  timeout_ms: z.coerce.number().int().min(0).max(MAX_PROCESS_WAIT_MS).optional().describe(`How long to wait with wait=true. @default ${DEFAULT_PROCESS_WAIT_MS}`),
});

/** Query of GET /v1/machines/{id}/processes/{pid}/output. */
export const ProcessOutputQuery = z.object({
  offset: z.coerce.number().int().min(0).optional().describe('Start after this many bytes of output (stdout and stderr together); next_offset of a previous answer. @default 0, or the Last-Event-ID header'),
  follow: booleanQueryFlag.describe('Stream the output as server-sent events until the process exits. @default false'),
});

/** The answer of GET …/output without follow. */
export const ProcessOutputSchema = z
  .object({
    pid: z.number().int(),
    status: z.enum(['running', 'exited']),
    exit_code: z.number().int().nullable(),
    stdout: z.string().describe('UTF-8 text written to stdout from `offset` on.'),
    stderr: z.string().describe('UTF-8 text written to stderr from `offset` on.'),
    offset: z.number().int().describe('Where this output starts (later than asked when older output was dropped).'),
    missed_bytes: z.number().int().describe(`Bytes between the offset asked for and \`offset\` that were dropped: only the last ${PROCESS_OUTPUT_LIMIT_BYTES} bytes are kept.`),
    next_offset: z.number().int().describe('Pass as offset to read on from here.'),
  })
  .meta({ id: 'ProcessOutput' });

/** Body of POST …/signal. */
export const SignalProcessBody = z.strictObject({
  signal: z
    .string()
    .transform((s) => s.toUpperCase().replace(/^SIG/, ''))
    .pipe(z.enum(PROCESS_SIGNALS as [ProcessSignal, ...ProcessSignal[]], { error: `must be one of ${PROCESS_SIGNALS.join(', ')}` }))
    .describe(`Signal name, with or without SIG: ${PROCESS_SIGNALS.join(', ')}.`),
});

/** JSON body of POST …/stdin (raw bytes are the other form). */
export const ProcessStdinBody = z
  .strictObject({
    data: z.string().optional().describe('UTF-8 text to write. @default nothing'),
    close: z.boolean().optional().describe('Close stdin after writing. @default false'),
  })
  .optional();

/** Query of POST …/stdin. */
export const ProcessStdinQuery = z.object({ close: booleanQueryFlag.describe('Close stdin after writing the body. @default false') });

// ---- Terminals ----

/** A terminal dimension in the query. */
const terminalSize = (what: string, fallback: number): z.ZodType<number> =>
  z.coerce.number().int().min(1).max(1000).default(fallback).describe(`Terminal ${what}, 1 to 1000. @default ${fallback}`);

/** Query of GET /v1/machines/{id}/pty. */
export const PtyQuery = z.object({
  cmd: z.string().min(1).refine((v) => !v.includes('\0'), 'must not contain NUL').optional().describe('A shell string run with `/bin/sh -c`. @default a login shell, `/bin/sh -l`'),
  cwd: ExecBody.shape.cwd,
  user: ExecBody.shape.user,
  cols: terminalSize('columns', 80),
  rows: terminalSize('rows', 24),
  keep: booleanQueryFlag.describe('Leave the command running when the socket closes (its output is then discarded). @default false: closing ends it'),
  access_token: z.string().optional().describe('The API key, for clients that cannot send an Authorization header (browsers). It ends up in URL logs: prefer the header.'),
});

/** A text frame from the client: a new window size. */
export const PtyResizeMessage = z.object({ type: z.literal('resize'), cols: z.number().int().min(1).max(1000), rows: z.number().int().min(1).max(1000) });

/** Query of the desktop (VNC) WebSocket. */
export const DesktopVncQuery = z.object({
  access_token: PtyQuery.shape.access_token,
});

// ---- Files ----

/** An absolute path inside the machine, normalised (`/a/./b/../c/` → `/a/c`). */
const machinePath = (what: string): z.ZodType<string, string> =>
  z
    .string()
    .min(1)
    .max(MAX_FILE_PATH_LENGTH)
    .regex(/^\//, 'must be an absolute path (starting with /)')
    .refine((v) => !v.includes('\0'), 'must not contain NUL')
    .transform((v) => normaliseFilePath(v) ?? v)
    .describe(`${what} Absolute; \`.\` and \`..\` are applied to the text first (never above /), then the machine resolves it in its own root.`);

/** Query of the file endpoints: one path. */
export const FilePathQuery = z.object({ path: machinePath('Path inside the machine.') });

/** Query of GET …/files/watch. */
export const FileWatchQuery = z.object({
  path: machinePath('The directory to watch.'),
  recursive: z.enum(['true', 'false']).default('false').describe('Watch its subdirectories too, and new ones as they appear.'),
});

/** What GET …/files/watch streams. */
export const FileWatchStreamSchema = z
  .string()
  .describe('event: create|write|remove|rename|overflow, data: {"path"} (overflow: the kernel dropped events, list the directory again); then, if the machine stops or the directory goes, event: end, data: {"reason"}');

/** Body of POST …/files/mkdir. */
export const MakeDirectoryBody = z.strictObject({ path: machinePath('Directory to create, with its missing parents.') }).meta({ id: 'MkdirRequest' });

/** Body of POST …/files/move. */
export const MoveFileBody = z
  .strictObject({
    from: machinePath('What to move.'),
    to: machinePath('The new path: must not exist; its parent must.'),
  })
  .meta({ id: 'MoveRequest' });

/** The stat of one path inside a machine. */
export const FileEntrySchema = z
  .object({
    path: z.string().describe('Absolute and normalised.'),
    size: z.number().int().describe('Bytes; for a symlink the length of its target.'),
    mode: z.string().describe('Permission bits as 4 octal digits, e.g. "0644" or "1777".'),
    mtime: dateTime().describe('Last modification.'),
    type: z.enum(FILE_TYPES).describe('Symlinks are reported as such, not followed.'),
  })
  .meta({ id: 'FileEntry' });

/** The answer of GET …/files/list. */
export const FileListSchema = z
  .object({
    path: z.string().describe('The directory listed.'),
    entries: z.array(FileEntrySchema).describe('Every entry but . and .., sorted by path.'),
  })
  .meta({ id: 'FileList' });

/** A raw byte stream in the OpenAPI document. */
const Binary = (description: string): z.ZodString => z.string().meta({ format: 'binary', description });

/** The answer of GET …/files: the bytes. */
export const FileContentSchema = Binary('The raw bytes of the file.');

/** The answer of GET …/files/archive. */
export const TarArchiveSchema = Binary('A tar stream.');

// ---- System ----

/** The answer of GET /healthz once the server is ready. */
export const HealthSchema = z.object({ status: z.literal('ok') });

/** The answer of GET /v1/info: facts the server states about itself (see docs/native-api.md). */
export const ServerInfoSchema = z.record(z.string(), z.unknown());

// ---- Private networks ----

/** Body of POST /v1/networks. */
export const CreateNetworkBody = z
  .strictObject({
    name: z.string().regex(NETWORK_NAME_PATTERN, 'must be 1 to 63 letters, digits, _, . or -, starting with a letter or digit').describe('Unique within the team.'),
  })
  .meta({ id: 'CreateNetworkRequest' });

/** A private network of the team. */
export const PrivateNetworkSchema = z
  .object({
    id: z.string().describe('net_ + 16 lowercase letters and digits.'),
    name: z.string(),
    created_at: dateTime(),
    machine_count: z.number().int().describe('How many live (not destroyed) machines are on it.'),
    machines: z
      .array(
        z.object({
          machine_id: z.string(),
          status: z.enum(MACHINE_STATUSES),
          private_ip: z.string().optional().describe('Its address, which the network\'s other machines reach; present while it is creating, running or paused (a paused machine that moved to another host gets one of that host at its resume).'),
        }),
      )
      .describe('The live machines on it, oldest first.'),
  })
  .meta({ id: 'PrivateNetwork' });

/** The answer of GET /v1/networks. */
export const PrivateNetworkListSchema = z.object({ items: z.array(PrivateNetworkSchema).describe(`Every network of the team (at most ${MAX_NETWORKS_PER_TEAM}), newest first.`) });

/** Path of one network. */
export const NetworkParams = z.object({ id: z.string().min(1).max(128).describe('Network id, e.g. net_a1b2c3d4.') });
