import type { AccessorWithUser } from '../../service/accessor-service.js';
import { HangarError } from '../../domain/errors.js';
import type { MachineEventRecord } from '../../domain/machine-event.js';
import { autoShutdownOf, type PaperspaceMachine } from '../../service/paperspace-service.js';

const MIB = 1024 * 1024;
const iso = (ms: number): string => new Date(ms).toISOString();

/** The last time anything about the machine changed: its lifecycle times and settings updates. */
function modifiedAt(m: PaperspaceMachine['record']): number {
  return Math.max(m.createdAt, m.startedAt ?? 0, m.pausedAt ?? 0, m.resumedAt ?? 0, m.destroyedAt ?? 0, m.updatedAt ?? 0);
}

/** A machine in the seed's shape: every field, camelCase, Hangar's values or documented defaults. */
export function renderPaperspaceMachine(pm: PaperspaceMachine): Record<string, unknown> {
  const m = pm.record;
  const shutdown = autoShutdownOf(m);
  return {
    accelerators: [],
    agentType: pm.agentType,
    autoShutdownEnabled: shutdown.enabled,
    autoShutdownForce: shutdown.enabled ? true : null,
    autoShutdownTimeout: shutdown.hours,
    autoSnapshotEnabled: m.autoSnapshot !== null,
    autoSnapshotFrequency: m.autoSnapshot?.frequency ?? null,
    autoSnapshotSaveCount: m.autoSnapshot?.keep ?? null,
    cpus: m.config.vcpus,
    dtCreated: iso(m.createdAt),
    dtDeleted: m.destroyedAt === null ? null : iso(m.destroyedAt),
    dtModified: iso(modifiedAt(m)),
    id: m.id,
    machineType: pm.machineType,
    name: m.name ?? m.id,
    networkId: m.networkId,
    os: m.template,
    privateIp: m.privateIp,
    publicIp: null,
    publicIpType: 'none',
    ram: m.config.memory_mb * MIB,
    region: pm.region,
    reservation: null,
    restorePointEnabled: m.restorePoint !== null,
    restorePointFrequency: m.restorePoint?.frequency ?? null,
    restorePointSnapshotId: m.restorePoint?.snapshotId ?? null,
    startupScriptId: m.startupScript?.scriptId ?? null,
    state: pm.state,
    storageRate: 0,
    storageTotal: m.config.disk_mb * MIB,
    storageUsed: pm.storageUsed,
    updatesPending: false,
    usageRate: 0,
  };
}

/** An event in the seed's shape. */
export function renderPaperspaceEvent(e: MachineEventRecord): Record<string, unknown> {
  return {
    dtCreated: iso(e.createdAt),
    dtFinished: e.finishedAt === null ? null : iso(e.finishedAt),
    dtStarted: e.startedAt === null ? null : iso(e.startedAt),
    error: e.error,
    id: e.id,
    machineId: e.machineId,
    name: e.name,
    state: e.state,
    startupScript: e.startupScript,
  };
}

/** An accessor in the seed's shape. */
export function renderPaperspaceAccessor({ accessor, user }: AccessorWithUser) {
  return {
    dtDeleted: accessor.deletedAt === null ? null : new Date(accessor.deletedAt).toISOString(),
    user: { email: user.email, firstName: user.firstName, id: user.id, lastName: user.lastName, publicProfileImageUrl: null },
  };
}

/** Fields of create and update bodies that would switch on something Hangar does not serve (networkId: not on an update). */
export interface UnsupportedFields {
  autoShutdownForce?: boolean;
  emailPassword?: boolean;
  enableNvlink?: boolean;
  networkId?: string;
  publicIpType?: string;
}

/** Why each unsupported field is refused, when it asks for more than its "off" value. */
const REFUSALS: { [K in keyof UnsupportedFields]-?: [refused: (v: NonNullable<UnsupportedFields[K]>) => boolean, why: string] } = {
  autoShutdownForce: [(v) => v === false, 'only forced auto shutdown exists (Hangar\'s deadline fires whatever the machine is doing); omit autoShutdownForce or send true'],
  emailPassword: [(v) => v, 'Hangar machines have no login password and the server sends no mail (reach a machine with an API key: exec, terminal, desktop); omit emailPassword or send false'],
  enableNvlink: [(v) => v, 'this server passes no GPUs into machines, so there is no NVLink to enable; omit enableNvlink or send false'],
  networkId: [() => true, 'a machine joins its private network at its create (networkId on POST /machines), and stays on it for its life; omit networkId'],
  publicIpType: [(v) => v !== 'none', 'a self-hosted server has no public addresses to hand out; a machine\'s ports are reached through the server\'s ingress (/v1/machines/{id}/ports/{port}/, or {port}-{id}.HANGAR_INGRESS_DOMAIN); omit publicIpType or send "none"'],
};

/** Throw UNSUPPORTED_OPERATION (422) for the first field that asks for a feature not served yet. */
export function refuseUnsupported(body: UnsupportedFields): void {
  for (const [field, [refused, why]] of Object.entries(REFUSALS) as Array<[keyof UnsupportedFields, [(v: unknown) => boolean, string]]>) {
    const v = body[field];
    if (v !== undefined && refused(v)) throw new HangarError('UNSUPPORTED_OPERATION', `${field}: ${why}.`, { field });
  }
}
