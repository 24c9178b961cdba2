import type { MachineRecord, MachineStatus } from '../../domain/machine.js';
import { attachmentState, type VolumeAttachment } from '../../domain/volume.js';
import type { VolumeView } from '../../service/volume-service.js';

/** One attachment as metadata.volume_attachments shows it (component `VolumeAttachment`). */
export function renderAttachment(a: VolumeAttachment, status: MachineStatus): Record<string, unknown> {
  return { volume_id: a.volumeId, mount_path: a.mountPath, read_only: a.readOnly, mode: a.readOnly ? 'ro' : 'rw', state: attachmentState(status) };
}

/** A machine's metadata as the API shows it: verbatim, plus `volume_attachments` (in request order) when it has volumes. */
export function metadataView(m: MachineRecord): Record<string, unknown> {
  if (m.volumes.length === 0) return m.metadata;
  return { ...m.metadata, volume_attachments: m.volumes.map((a) => renderAttachment(a, m.status)) };
}

/** The API form of a volume (component `Volume`). */
export function renderVolume({ volume, holders }: VolumeView): Record<string, unknown> {
  return {
    id: volume.id,
    name: volume.name,
    size_mb: volume.sizeMb,
    created_at: new Date(volume.createdAt).toISOString(),
    attachments: holders.map((h) => ({
      machine_id: h.machineId,
      mount_path: h.mountPath,
      read_only: h.readOnly,
      mode: h.readOnly ? 'ro' : 'rw',
      state: attachmentState(h.status),
    })),
  };
}
