import { z } from 'zod';
import { MACHINE_EVENT_MEANINGS, MACHINE_EVENT_NAMES, MACHINE_EVENT_STATES } from '../../domain/machine-event.js';
import { AUTO_SNAPSHOT_FREQUENCIES, AUTO_SNAPSHOT_MAX_KEEP } from '../../domain/machine.js';
import { STARTUP_SCRIPT_OUTPUT_KEPT } from '../../domain/startup-script.js';
import { MACHINE_ORDER_FIELDS, PAPERSPACE_STATES } from '../../service/paperspace-service.js';
import { dateTime as sharedDateTime, int64 } from '../shared/schemas.js';

/** Error answers of this surface: the seed's `{code, message, details?}`. */
export const PaperspaceErrorSchema = z
  .object({
    code: z.string().describe('Stable UPPER_SNAKE code from Hangar\'s error catalogue.'),
    message: z.string().describe('A sentence saying what went wrong and what to fix.'),
    details: z.record(z.string(), z.unknown()).optional(),
  })
  .meta({ id: 'PaperspaceError' });

const dateTime = sharedDateTime();
const SNAPSHOT_FREQUENCIES = AUTO_SNAPSHOT_FREQUENCIES;
const PUBLIC_IP_TYPES = ['static', 'dynamic', 'none'] as const;

/** The seed's desktop settings: Hangar's desktops are Linux, served over VNC. */
export const DesktopSettingsSchema = z
  .strictObject({
    vnc: z
      .strictObject({
        hostname: z.string().describe("The machine's private address, which the Hangar host reaches."),
        password: z.string().describe('The VNC password (8 characters), derived from the server secret and the machine id; never stored.'),
        port: z.number().int().describe('The port the VNC server listens on (the template\'s, 5900 for desktop).'),
      })
      .describe('Settings for Linux desktop machines.'),
  })
  .meta({ id: 'PaperspaceDesktopSettings' });

/** The seed's machine object. */
export const PaperspaceMachineSchema = z
  .strictObject({
    accelerators: z
      .array(z.strictObject({ count: z.number(), memory: z.number().int().nullable(), name: z.string() }))
      .nullable()
      .optional()
      .describe('Always sent; empty: Hangar machines have no GPUs.'),
    agentType: z.string().describe('"LinuxDesktop" when the machine\'s template runs a desktop (see GET /machines/{id}/desktop), else "LinuxHeadless".'),
    autoShutdownEnabled: z.boolean(),
    autoShutdownForce: z.boolean().nullable().describe('true when auto shutdown is enabled (Hangar\'s deadline is always forced), else null.'),
    autoShutdownTimeout: z.number().nullable().describe('Hours; null when auto shutdown is disabled.'),
    autoSnapshotEnabled: z.boolean().describe('True when automatic snapshots are taken while the machine is ready.'),
    autoSnapshotFrequency: z.enum(SNAPSHOT_FREQUENCIES).nullable().describe('The period of automatic snapshots (a month is 30 days); null when disabled.'),
    autoSnapshotSaveCount: z.number().nullable().describe('How many automatic snapshots are kept (older ones are deleted); null when disabled.'),
    cpus: z.number().describe('vCPUs (CPU quota).'),
    dtCreated: dateTime,
    dtDeleted: dateTime.nullable(),
    dtModified: dateTime,
    id: z.string(),
    machineType: z.string().describe('The catalogue label matching its vCPUs and memory, or "custom".'),
    name: z.string().describe('The name given at create or update; the id for machines never named.'),
    networkId: z
      .string()
      .nullable()
      .describe('The private network it joined at its create (GET /v1/networks): it reaches that network\'s other machines on their privateIp; null when on none.'),
    os: z.string().describe('The Hangar template the machine runs.'),
    privateIp: z.string().nullable().describe("The machine's address on the server's private subnet (the native private_ip); null when it has none."),
    publicIp: z.string().nullable().describe('Always null.'),
    publicIpType: z.enum(PUBLIC_IP_TYPES).describe('Always "none".'),
    ram: int64().describe('Memory limit in bytes.'),
    region: z.string().describe('The machine\'s region: one of the server\'s regions (HANGAR_REGIONS; "local" by default).'),
    reservation: z
      .strictObject({ dtFinished: dateTime, dtStarted: dateTime, id: z.string().meta({ format: 'uuid' }), isActive: z.boolean(), name: z.string() })
      .nullable()
      .describe('Always null.'),
    restorePointEnabled: z.boolean().describe('True when each stop reverts the machine to its restore point.'),
    restorePointFrequency: z.enum(['shutdown']).nullable().describe('"shutdown" when a restore point is enabled, else null.'),
    restorePointSnapshotId: z.string().nullable().describe('The snapshot each stop reverts the machine to (GET /v1/snapshots/{id}); null when disabled.'),
    startupScriptId: z
      .string()
      .nullable()
      .describe('The startup script it was created with (GET /v1/startup-scripts/{id}; it keeps a copy, so the script may since be deleted); null when none.'),
    state: z.enum(PAPERSPACE_STATES),
    storageRate: z.number().describe('Always 0: Hangar does not bill.'),
    storageTotal: int64().describe('Disk quota (size of the writable layer) in bytes.'),
    storageUsed: int64().describe('Bytes in use in the writable layer while it is mounted (ready machines); 0 otherwise.'),
    updatesPending: z.boolean().describe('Always false.'),
    usageRate: z.number().describe('Always 0: Hangar does not bill.'),
  })
  .meta({ id: 'PaperspaceMachine' });

/** The seed's machine event object. */
export const PaperspaceEventSchema = z
  .strictObject({
    dtCreated: dateTime,
    dtFinished: dateTime.nullable(),
    dtStarted: dateTime.nullable(),
    error: z.string().nullable(),
    id: z.string(),
    machineId: z.string().nullable(),
    name: z.enum(MACHINE_EVENT_NAMES).describe(`The operation: ${MACHINE_EVENT_NAMES.map((n) => `${n}: ${MACHINE_EVENT_MEANINGS[n]}`).join('; ')}.`),
    state: z.enum(MACHINE_EVENT_STATES),
    startupScript: z
      .strictObject({
        pid: z.number().int().describe('The process inside the machine: GET /v1/machines/{machineId}/processes/{pid}/output has its output while this server runs.'),
        exitCode: z.number().int().nullable().describe('Null while it runs; 0 for done; otherwise the code (128 + n when killed by signal n, -1 when it ended with no status).'),
        output: z.string().describe(`The last ${STARTUP_SCRIPT_OUTPUT_KEPT / 1024} KiB of its output (stdout and stderr in order), kept when it ends; empty before.`),
        outputBytes: z.number().int().describe('Bytes of output it wrote in all.'),
      })
      .nullable()
      .describe('A startup-script event\'s run; null for every other event, and for a script that could not be started (error says why).'),
  })
  .meta({ id: 'PaperspaceMachineEvent' });

/** The answer of create, update, delete, start, stop and restart. */
export const MachineWithEventSchema = z.strictObject({ data: PaperspaceMachineSchema, event: PaperspaceEventSchema });

const page = <T extends z.ZodType>(item: T) =>
  z.strictObject({
    hasMore: z.boolean(),
    items: z.array(item),
    nextPage: z.string().nullable().describe('Pass as `after` for the next page; null on the last page.'),
  });

/** A page of machines. */
export const MachinePageSchema = page(PaperspaceMachineSchema);
/** A page of events. */
export const EventPageSchema = page(PaperspaceEventSchema);

/** A team member, as accessors show it. */
export const PaperspaceUserSchema = z
  .strictObject({
    email: z.string().describe('Lower-cased.'),
    firstName: z.string().nullable(),
    id: z.string(),
    lastName: z.string().nullable(),
    publicProfileImageUrl: z.string().nullable().describe('Always null: Hangar keeps no profile images.'),
  })
  .meta({ id: 'PaperspaceUser' });

/** The seed's accessor object. */
export const PaperspaceAccessorSchema = z
  .strictObject({
    dtDeleted: dateTime.nullable().describe('When the access was removed; null while it holds.'),
    user: PaperspaceUserSchema,
  })
  .meta({ id: 'PaperspaceAccessor' });

/** A page of accessors. */
export const AccessorPageSchema = page(PaperspaceAccessorSchema);

/** Query numbers arrive as strings. */
const limit = z.coerce
  .number()
  .int()
  .min(1)
  .max(120)
  .optional()
  .describe('Items per page, 1-120. @default 20');
const after = z.string().min(1).max(1024).optional().describe('The nextPage of the previous page.');
const order = z.enum(['asc', 'desc']).optional().describe('@default "desc"');

/** Query of GET /machines. */
export const MachineListQuery = z.strictObject({
  after,
  limit,
  orderBy: z.enum(MACHINE_ORDER_FIELDS).optional().describe('@default "dtCreated"'),
  order,
  name: z.string().min(1).max(255).optional().describe('Exact name.'),
  region: z.string().min(1).max(64).optional(),
  agentType: z.string().min(1).max(64).optional(),
  machineType: z.string().min(1).max(64).optional(),
});

/** Query of GET /machine-events. */
export const EventListQuery = z.strictObject({
  after,
  limit,
  orderBy: z.enum(['dtCreated']).optional().describe('@default "dtCreated"'),
  order,
  machineId: z.string().min(1).max(128).optional(),
});

/** Query of GET /machines/{id}/accessors. */
export const AccessorListQuery = z.strictObject({
  after,
  limit,
  orderBy: z.enum(['id']).optional().describe('The user id. @default "id"'),
  order,
});

/** Path of one accessor. */
export const AccessorParams = z.strictObject({ id: z.string().min(1).max(128), userId: z.string().min(1).max(128) });

/** Body of POST /machines/{id}/accessors. */
export const AddAccessorBody = z.strictObject({
  userId: z.string().min(1).max(128).describe('A user of the team (see GET /v1/admin/teams/{id}/users).'),
});

/** Path of one machine or event. */
export const IdParams = z.strictObject({ id: z.string().min(1).max(128) });

const hours = z.number().positive().max(720).describe('Hours (at most 720, 30 days).');
const name = z.string().trim().min(1).max(255);

/** Auto snapshot and restore point fields (create and update). */
const snapshotFields = {
  autoSnapshotEnabled: z.boolean().optional().describe('Take automatic snapshots while the machine is ready; true needs autoSnapshotFrequency and autoSnapshotSaveCount (on update, unless already set).'),
  autoSnapshotFrequency: z.enum(SNAPSHOT_FREQUENCIES).optional().describe('Period of automatic snapshots (a month is 30 days); only with autoSnapshotEnabled.'),
  autoSnapshotSaveCount: z
    .number()
    .int()
    .min(1)
    .max(AUTO_SNAPSHOT_MAX_KEEP)
    .optional()
    .describe(`How many automatic snapshots to keep, 1-${AUTO_SNAPSHOT_MAX_KEEP}; the oldest beyond are deleted. Only with autoSnapshotEnabled.`),
  restorePointFrequency: z.enum(['shutdown']).optional().describe('Only "shutdown": the machine reverts to its restore point at each stop. Only with restorePointEnabled.'),
};

/** Fields of the seed Hangar does not serve yet: accepted only at their "off" value (create and update). */
const unsupportedFields = {
  publicIpType: z.enum(PUBLIC_IP_TYPES).optional().describe('Only "none" is accepted.'),
};

/** Create-only fields Hangar does not serve yet. */
const unsupportedCreateFields = {
  emailPassword: z.boolean().optional().describe('Not supported: only false is accepted.'),
  enableNvlink: z.boolean().optional().describe('No GPUs: only false is accepted.'),
};

/** Body of POST /machines. */
export const CreateBody = z
  .strictObject({
    name: name.describe('The name of the new machine.'),
    machineType: z.string().min(1).max(64).describe('A machine type label (see docs/paperspace-api.md; C1-C5 by default).'),
    templateId: z.string().min(1).max(64).describe('A Hangar template, e.g. "base".'),
    region: z.string().min(1).max(64).describe('One of the server\'s regions (HANGAR_REGIONS, e.g. ny2,ca1,ams1; "local" by default); another is a 400 that lists them.'),
    diskSize: z.number().int().describe('GB (1 GB = 1024 MiB); one of the configured sizes.'),
    autoShutdownEnabled: z.boolean().optional().describe('@default false'),
    autoShutdownForce: z.boolean().optional().describe('Only true: Hangar\'s deadline is always forced.'),
    autoShutdownTimeout: hours.optional(),
    startOnCreate: z.boolean().optional().describe('false: the machine is created, then stopped. @default true'),
    accessorIds: z
      .array(z.string().min(1).max(128))
      .max(100)
      .optional()
      .describe('Users of the team granted access to the new machine (its accessors); each must exist in the team.'),
    takeInitialSnapshot: z.boolean().optional().describe('Snapshot the machine once it runs, as part of the create event. @default false'),
    restorePointEnabled: z.boolean().optional().describe('Make the initial snapshot the restore point (each stop reverts to it); implies takeInitialSnapshot. @default false'),
    startupScriptId: z
      .string()
      .min(1)
      .max(128)
      .optional()
      .describe(
        'A startup script of the team (POST /v1/startup-scripts). The machine keeps a copy and runs it with /bin/sh -c after it starts: only the first time when the script is run_once, ' +
          'else after every create, start and restart. Each run is a startup-script event with its process id, exit code and output. Unknown: 422 UNKNOWN_STARTUP_SCRIPT.',
      ),
    networkId: z
      .string()
      .min(1)
      .max(128)
      .optional()
      .describe(
        'A private network of the team (native POST /v1/networks): the machine reaches the other machines on it on their privateIp, any protocol, and only them. ' +
          'Fixed for its life; an unknown one is 422 UNKNOWN_NETWORK and nothing is created. @default none',
      ),
    ...snapshotFields,
    ...unsupportedFields,
    ...unsupportedCreateFields,
  })
  .meta({ id: 'PaperspaceCreateMachineRequest' });

/** Body of PUT /machines/{id}. */
export const UpdateBody = z
  .strictObject({
    name: name.optional(),
    machineType: z.string().min(1).max(64).optional().describe('A machine type label: the ready machine gets its vCPUs and memory at once (a stopped machine only its current type).'),
    diskSize: z.number().int().optional().describe('GB, one of the configured sizes, not smaller than the current one: the ready machine\'s disk and file system grow.'),
    autoShutdownEnabled: z.boolean().optional(),
    autoShutdownForce: z.boolean().optional().describe('Only true.'),
    autoShutdownTimeout: hours.optional(),
    restorePointEnabled: z.boolean().optional().describe('true: each stop reverts the machine to its restore point (restorePointSnapshotId, or a snapshot taken now of the ready machine); false: off (the snapshot stays).'),
    restorePointSnapshotId: z.string().min(1).max(128).optional().describe('A snapshot of this machine to revert to at each stop; enables the restore point.'),
    networkId: z.string().optional().describe('Refused: a machine joins its network at its create and stays on it.'),
    ...snapshotFields,
    ...unsupportedFields,
  })
  .meta({ id: 'PaperspaceUpdateMachineRequest' });

/** A template machines can be created from (`templateId`), in the seed's style. */
export const PaperspaceTemplateSchema = z
  .strictObject({
    id: z.string().describe('The templateId to create machines with (the template name).'),
    name: z.string(),
    description: z.string(),
    agentType: z.string().describe('LinuxHeadless, or LinuxDesktop for templates that run a desktop.'),
    operatingSystemLabel: z.string().describe('Always Linux.'),
    isServerWide: z.boolean().describe('Every team sees it (server templates), or only the owning team.'),
    status: z.string().describe('ready, building, error, or not_built (built on first use).'),
    version: z.number().int().nullable(),
    dtCreated: z.string().nullable(),
  })
  .meta({ id: 'PaperspaceTemplate' });

/** A page of templates. */
export const TemplatePageSchema = page(PaperspaceTemplateSchema);

/** Query of GET /templates and GET /os-templates. */
export const TemplateListQuery = z.strictObject({ after, limit });
