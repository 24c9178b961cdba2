import type { FieldProblem } from './errors.js';
import type { MachineStatus } from './machine.js';

/**
 * Volumes: a team's disks that outlive machines. A volume is attached to machines at
 * their create, at a mount path, read-write (to at most one live machine) or read-only
 * (to any number); the attachment belongs to the machine until it is destroyed.
 */

/** Everything stored about one volume. Times are epoch milliseconds. */
export interface VolumeRecord {
  /** `vol_` + 16 lowercase letters and digits. */
  id: string;
  teamId: string;
  /** Unique within the team. */
  name: string;
  /** The hard size: the volume's file system never grows past it. */
  sizeMb: number;
  createdAt: number;
}

/** One volume as a machine has it, in the order its create asked for. */
export interface VolumeAttachment {
  volumeId: string;
  /** Absolute and normalised (see `normaliseMountPath`). */
  mountPath: string;
  readOnly: boolean;
}

/** A live machine holding a volume (for in-use checks and the volume's view). */
export interface VolumeHolder {
  machineId: string;
  status: MachineStatus;
  mountPath: string;
  readOnly: boolean;
}

/** Limits on what a request may ask for. */
export const VOLUME_LIMITS = {
  /** Below 16 MiB mkfs.ext4 leaves the journal out; the machine disk has the same floor. */
  sizeMb: { min: 16, max: 1_048_576 },
  perMachine: 8,
  nameMaxLength: 63,
  mountPathMaxLength: 1024,
} as const;

/** Volume names: letters, digits, `_`, `.`, `-`, starting with a letter or digit. */
export const VOLUME_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

/** Volume ids as a path parameter accepts them. */
export const VOLUME_ID_PATTERN = /^vol_[a-z0-9]{1,64}$/;

/** Paths a volume may not be mounted at or under: the kernel's file systems and Hangar's own. */
export const RESERVED_MOUNT_PATHS = ['/proc', '/sys', '/dev', '/.hangar'] as const;

export const ATTACHMENT_STATES = ['attached', 'detached', 'released'] as const;
/**
 * Where an attachment stands: `attached` while the machine runs with the volume mounted,
 * `detached` while it holds the attachment without running (creating, paused, error),
 * `released` once the machine is destroyed (the volume is free of it).
 */
export type AttachmentState = (typeof ATTACHMENT_STATES)[number];

/** The attachment state of a machine in `status`. */
export function attachmentState(status: MachineStatus): AttachmentState {
  switch (status) {
    case 'running':
      return 'attached';
    case 'creating':
    case 'paused':
    case 'error':
      return 'detached';
    case 'destroyed':
      return 'released';
  }
}

/** `/a/./b/../c/` → `/a/c`; null when not absolute or holding NUL. */
export function normaliseMountPath(path: string): string | null {
  if (!path.startsWith('/') || path.includes('\0')) return null;
  const parts: string[] = [];
  for (const part of path.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') parts.pop();
    else parts.push(part);
  }
  return `/${parts.join('/')}`;
}

/** True when `inner` is `outer` or a path below it (both normalised). */
export function pathWithin(inner: string, outer: string): boolean {
  return inner === outer || outer === '/' || inner.startsWith(`${outer}/`);
}

/** Why a normalised mount path cannot take a volume, or null when it can. */
export function mountPathProblem(normalised: string): string | null {
  if (normalised === '/') return 'must not be / (the machine\'s root); mount the volume at a directory such as /data';
  const reserved = RESERVED_MOUNT_PATHS.find((r) => pathWithin(normalised, r));
  if (reserved) return `must not be ${reserved} or below it (${RESERVED_MOUNT_PATHS.join(', ')} are the system\'s); use a directory such as /data`;
  return null;
}

/** A requested attachment after schema validation, its mount path not yet normalised. */
export interface AttachmentRequest {
  volumeId: string;
  mountPath: string;
  readOnly: boolean;
}

/**
 * The attachments of one create, mount paths normalised, or the problems with them:
 * each path allowed, no volume twice, no path twice, none inside another (the inner
 * mount point would be made inside the outer volume).
 */
export function checkAttachments(requests: readonly AttachmentRequest[], field = 'volumes'): { attachments: VolumeAttachment[]; problems: FieldProblem[] } {
  const problems: FieldProblem[] = [];
  const attachments: VolumeAttachment[] = [];
  if (requests.length > VOLUME_LIMITS.perMachine) {
    problems.push({ field, message: `a machine takes at most ${VOLUME_LIMITS.perMachine} volumes` });
  }
  requests.forEach((r, i) => {
    const at = `${field}.${i}`;
    const path = normaliseMountPath(r.mountPath);
    const problem = path === null ? 'must be an absolute path without NUL bytes, e.g. /data' : mountPathProblem(path);
    if (path === null || problem !== null) {
      problems.push({ field: `${at}.mount_path`, message: problem ?? 'must be an absolute path' });
      return;
    }
    const sameVolume = attachments.findIndex((a) => a.volumeId === r.volumeId);
    if (sameVolume >= 0) {
      problems.push({ field: `${at}.volume_id`, message: `${r.volumeId} is already attached by ${field}.${sameVolume}; attach a volume once` });
      return;
    }
    const clash = attachments.findIndex((a) => pathWithin(path, a.mountPath) || pathWithin(a.mountPath, path));
    if (clash >= 0) {
      const other = attachments[clash]!.mountPath;
      problems.push({
        field: `${at}.mount_path`,
        message: other === path ? `${path} is already the mount path of ${field}.${clash}` : `${path} and ${other} (${field}.${clash}) are inside one another; use separate directories`,
      });
      return;
    }
    attachments.push({ volumeId: r.volumeId, mountPath: path, readOnly: r.readOnly });
  });
  return { attachments, problems };
}

/**
 * The store refused to attach a volume: it no longer exists for the machine's team
 * (`missing`), or a read-write attachment met another live machine holding it read-write
 * (`held`, with that machine's id). Nothing was written.
 */
export class VolumeConflictError extends Error {
  constructor(
    readonly volumeId: string,
    readonly reason: 'missing' | 'held',
    readonly heldBy: string | null,
  ) {
    super(reason === 'missing' ? `volume ${volumeId} does not exist for this team` : `volume ${volumeId} is held by machine ${heldBy}`);
    this.name = 'VolumeConflictError';
  }
}
