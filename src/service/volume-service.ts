import { HangarError, validationError, volumeNotFound } from '../domain/errors.js';
import { newVolumeId } from '../domain/ids.js';
import type { Caller } from '../domain/team.js';
import {
  checkAttachments,
  VolumeConflictError,
  type AttachmentRequest,
  type VolumeAttachment,
  type VolumeHolder,
  type VolumeRecord,
} from '../domain/volume.js';
import type { MachineCore } from './machine-core.js';

/** A team has at most this many volumes: the list needs no paging, and no team holds unbounded disk. */
export const MAX_VOLUMES_PER_TEAM = 100;

/** A create request after validation at the edge. */
export interface CreateVolumeInput {
  name: string;
  sizeMb: number;
}

/** A volume and the live machines holding it. */
export interface VolumeView {
  volume: VolumeRecord;
  holders: VolumeHolder[];
}

/** The 409 of a volume a read-write attachment cannot take: another live machine has it read-write. */
export function volumeInUse(volumeId: string, machineId: string): HangarError {
  return new HangarError(
    'VOLUME_IN_USE',
    `Volume ${volumeId} is attached read-write to machine ${machineId}, and a volume is read-write in one live machine at a time. ` +
      `Attach it with read_only: true, or destroy ${machineId} first.`,
    { volume_id: volumeId, machine_id: machineId },
  );
}

/** The 422 of a volume to attach that the team does not have. */
export function unknownVolume(volumeId: string): HangarError {
  return new HangarError('UNKNOWN_VOLUME', `Volume ${volumeId} does not exist for this team; list yours with GET /v1/volumes.`, { volume_id: volumeId });
}

/** The client error for a store's refusal to attach. */
export function attachRefusal(err: VolumeConflictError): HangarError {
  return err.reason === 'missing' ? unknownVolume(err.volumeId) : volumeInUse(err.volumeId, err.heldBy ?? 'unknown');
}

/**
 * Volumes of a team: create (an image made by the runtime, then the record), list, get
 * and delete (refused while a live machine holds the volume), and the checks a machine
 * create makes before it attaches them. Every team key and user of the team sees the
 * team's volumes; other teams' are missing (404).
 */
export class VolumeService {
  constructor(private readonly core: MachineCore) {}

  /** Create a volume of `sizeMb`: its file system is made before the record exists, so a listed volume is usable. */
  async create(caller: Caller, input: CreateVolumeInput): Promise<VolumeView> {
    const { store, runtime } = this.core;
    // A quick answer for the usual duplicate; the insert below is the atomic check.
    if ((await store.listVolumes(caller.team.id)).some((v) => v.name === input.name)) throw this.nameTaken(input.name);
    const volume: VolumeRecord = { id: newVolumeId(), teamId: caller.team.id, name: input.name, sizeMb: input.sizeMb, createdAt: this.core.now() };
    const release = await this.core.quotas.reserve(caller.team.id, { volume_mb: input.sizeMb });
    try {
      return await this.createReserved(volume, input);
    } finally {
      release();
    }
  }

  private async createReserved(volume: VolumeRecord, input: CreateVolumeInput): Promise<VolumeView> {
    const { store, runtime } = this.core;
    try {
      await runtime.createVolume(volume.id, volume.sizeMb);
    } catch (err) {
      this.core.log.error({ volume: volume.id, err }, 'volume create failed');
      // The reason names host paths and tools: it goes to the log, the client gets what to do.
      throw new HangarError('RUNTIME_FAILED', `Volume ${input.name} could not be created: the host could not make its file system (the server log has why); nothing was created. Try again, or a smaller size_mb.`);
    }
    const outcome = await store.insertVolume(volume, MAX_VOLUMES_PER_TEAM).catch(async (err: unknown) => {
      await this.removeFiles(volume.id);
      throw err;
    });
    if (outcome !== 'inserted') {
      await this.removeFiles(volume.id);
      if (outcome === 'name_taken') throw this.nameTaken(input.name);
      throw new HangarError('CAPACITY_EXCEEDED', `This team has ${MAX_VOLUMES_PER_TEAM} volumes, as many as a team may; delete one first.`);
    }
    return { volume, holders: [] };
  }

  /** The team's volumes, newest first (at most MAX_VOLUMES_PER_TEAM). */
  async list(caller: Caller): Promise<VolumeView[]> {
    const volumes = await this.core.store.listVolumes(caller.team.id);
    return Promise.all(volumes.map(async (volume) => ({ volume, holders: await this.core.store.volumeHolders(volume.id) })));
  }

  /** One of the team's volumes, or NOT_FOUND (also when another team's). */
  async get(caller: Caller, id: string): Promise<VolumeView> {
    const volume = await this.core.store.getVolume(id);
    if (!volume || volume.teamId !== caller.team.id) throw volumeNotFound(id);
    return { volume, holders: await this.core.store.volumeHolders(id) };
  }

  /** Delete a volume and its data; 409 VOLUME_IN_USE while any live machine has it attached. */
  async delete(caller: Caller, id: string): Promise<void> {
    await this.get(caller, id);
    const { deleted, holders } = await this.core.store.deleteVolume(id);
    if (holders.length > 0) {
      const names = holders.map((h) => `${h.machineId} (${h.status})`).join(', ');
      throw new HangarError(
        'VOLUME_IN_USE',
        `Volume ${id} is attached to ${names}; a volume is deleted only once no live machine has it. Destroy ${holders.length > 1 ? 'those machines' : 'that machine'} first.`,
        { volume_id: id, machine_id: holders[0]!.machineId, machine_ids: holders.map((h) => h.machineId) },
      );
    }
    if (!deleted) throw volumeNotFound(id);
    await this.removeFiles(id);
  }

  /**
   * The attachments a create asks for, checked: paths allowed and distinct (400), each
   * volume the team's (422 UNKNOWN_VOLUME), a read-write one held read-write by no other
   * live machine (409 VOLUME_IN_USE). The store checks the last two again, atomically, at the insert.
   */
  async attachments(caller: Caller, requests: readonly AttachmentRequest[]): Promise<VolumeAttachment[]> {
    const { attachments, problems } = checkAttachments(requests);
    if (problems.length) throw validationError(problems);
    for (const a of attachments) {
      const v = await this.core.store.getVolume(a.volumeId);
      if (!v || v.teamId !== caller.team.id) throw unknownVolume(a.volumeId);
      if (a.readOnly) continue;
      const writer = (await this.core.store.volumeHolders(a.volumeId)).find((h) => !h.readOnly);
      if (writer) throw volumeInUse(a.volumeId, writer.machineId);
    }
    return attachments;
  }

  /** Remove a volume's files; a failure is logged (the next start removes files no record has). */
  private async removeFiles(id: string): Promise<void> {
    await this.core.runtime.deleteVolume(id).catch((err: unknown) => this.core.log.warn({ volume: id, err }, 'volume files could not be removed; the next start removes them'));
  }

  private nameTaken(name: string): HangarError {
    return new HangarError('VOLUME_NAME_TAKEN', `This team already has a volume named "${name}"; choose another name, or use that volume.`, { name });
  }
}
