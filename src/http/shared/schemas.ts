/** Schemas that more than one surface answers with: the error body and a machine's resources. */
import { z } from 'zod';
import { CONFIG_LIMITS } from '../../domain/machine.js';
import { intBetween } from '../validation.js';

/** A timestamp (`format: date-time`): Hangar writes RFC 3339 in UTC with milliseconds, e.g. 2026-12-04T20:46:09.123Z. */
export const dateTime = (): z.ZodString => z.string().meta({ format: 'date-time' });

/** A whole number the seeds type as `int64` (milliseconds, bytes). */
export const int64 = (): z.ZodNumber => z.number().int().meta({ format: 'int64' });

/** The error body of the native, compute and admin surfaces (component `Error`). */
export const ErrorSchema = z
  .object({
    code: z.string().describe('Stable UPPER_SNAKE code from the error catalogue.'),
    message: z.string().describe('A sentence saying what went wrong and what to fix.'),
    details: z.record(z.string(), z.unknown()).optional(),
  })
  .meta({ id: 'Error' });

/** A machine's resources (component `MachineConfig`): native machines and admin warm pools. */
export const MachineConfigSchema = z
  .object({
    vcpus: intBetween(CONFIG_LIMITS.vcpus.min, CONFIG_LIMITS.vcpus.max).describe('CPU quota in whole CPUs.'),
    memory_mb: intBetween(CONFIG_LIMITS.memory_mb.min, CONFIG_LIMITS.memory_mb.max).describe('Memory limit in MiB.'),
    disk_mb: intBetween(CONFIG_LIMITS.disk_mb.min, CONFIG_LIMITS.disk_mb.max).describe('Writable layer size in MiB.'),
  })
  .meta({ id: 'MachineConfig' });

const quotaField = (what: string, unit: string) =>
  z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional().describe(`${what}, in ${unit}; absent: no ceiling.`);

/** A team's quotas: each a ceiling, absent for none (docs/native-api.md, Quotas). */
export const TeamQuotasSchema = z
  .strictObject({
    machines: quotaField('Machines running or being created at once', 'machines'),
    vcpus: quotaField('vCPUs of the machines running at once', 'vCPUs'),
    memory_mb: quotaField('Memory of the machines running at once', 'MiB'),
    disk_mb: quotaField('Disks of every machine not destroyed (paused ones keep theirs)', 'MiB'),
    snapshot_bytes: quotaField("Bytes of the team's snapshots (pause snapshots included); a snapshot is refused once they reach it", 'bytes'),
    volume_mb: quotaField("Sizes of the team's volumes", 'MiB'),
    templates: quotaField('Template names the team has built', 'names'),
  })
  .meta({ id: 'TeamQuotas' });

/** What a team holds now, in the units of its quotas. */
export const TeamUsageSchema = z
  .strictObject({
    machines: z.number().int(),
    vcpus: z.number().int(),
    memory_mb: z.number().int(),
    disk_mb: z.number().int(),
    snapshot_bytes: z.number().int(),
    volume_mb: z.number().int(),
    templates: z.number().int(),
  })
  .meta({ id: 'TeamUsage' });

/** A team's quotas with what it holds. */
export const TeamQuotasViewSchema = z.strictObject({ team_id: z.string(), quotas: TeamQuotasSchema, usage: TeamUsageSchema }).meta({ id: 'TeamQuotasView' });

