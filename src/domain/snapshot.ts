import type { MachineConfig } from './machine.js';
import type { VolumeAttachment } from './volume.js';

export const SNAPSHOT_KINDS = ['pause', 'manual', 'auto', 'initial', 'restore_point'] as const;
/**
 * Why a snapshot exists: a paused machine's state (`pause`), one taken on request
 * (`manual`), by the machine's auto-snapshot schedule (`auto`, rotated), right after
 * its create (`initial`), or when a restore point was enabled without one (`restore_point`).
 */
export type SnapshotKind = (typeof SNAPSHOT_KINDS)[number];

/** A snapshot: memory (when CRIU works) and the writable layer of one machine at one instant. */
export interface SnapshotRecord {
  id: string;
  teamId: string;
  /** The machine it was taken from. */
  machineId: string;
  kind: SnapshotKind;
  createdAt: number;
  sizeBytes: number;
  /** True when processes and memory were saved; false for a filesystem-only snapshot. */
  memory: boolean;
  /** What a machine started from it runs on. */
  template: string;
  /** The built template version it runs on; null for directory templates. */
  templateBuild: string | null;
  config: MachineConfig;
  env: Record<string, string>;
  cwd: string | null;
  /**
   * The volumes its machine had attached: its memory images hold those mounts, so a fork
   * restores into the same ones (only read-only ones can be shared). The volumes' contents
   * are not part of the snapshot.
   */
  volumes: VolumeAttachment[];
}
