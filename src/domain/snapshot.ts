import type { MachineConfig } from './machine.js';

/** Why a snapshot exists: a paused machine's state, or one taken on request. */
export type SnapshotKind = 'pause' | 'manual';

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
  config: MachineConfig;
  env: Record<string, string>;
  cwd: string | null;
}
