/**
 * Machine types: named sizes (vCPUs and memory) a create may ask for by label, as the
 * Paperspace-style surface does. The catalogue is configurable; this is the default.
 */
import type { MachineConfig } from './machine.js';

/** One machine type: a label and the resources it stands for. */
export interface MachineType {
  label: string;
  vcpus: number;
  memory_mb: number;
}

/** The built-in catalogue (overridable with HANGAR_PAPERSPACE_MACHINE_TYPES). */
export const DEFAULT_MACHINE_TYPES: readonly MachineType[] = [
  { label: 'C1', vcpus: 1, memory_mb: 512 },
  { label: 'C2', vcpus: 1, memory_mb: 1024 },
  { label: 'C3', vcpus: 2, memory_mb: 2048 },
  { label: 'C4', vcpus: 2, memory_mb: 4096 },
  { label: 'C5', vcpus: 4, memory_mb: 8192 },
];

/** The label shown for a machine whose resources match no type of the catalogue. */
export const CUSTOM_MACHINE_TYPE = 'custom';

/** The label of the first type whose vCPUs and memory equal the machine's, else `custom`. */
export function machineTypeOf(config: MachineConfig, types: readonly MachineType[]): string {
  return types.find((t) => t.vcpus === config.vcpus && t.memory_mb === config.memory_mb)?.label ?? CUSTOM_MACHINE_TYPE;
}
