/**
 * Files inside a machine as the API shows them: the stat of one path, and the rules
 * for the paths a client may name. No I/O: the machine itself resolves paths.
 */

/** What a path inside a machine is. */
export const FILE_TYPES = ['file', 'directory', 'symlink', 'fifo', 'socket', 'char_device', 'block_device'] as const;
export type FileType = (typeof FILE_TYPES)[number];

/** The stat of one path inside a machine (symlinks are not followed). */
export interface FileEntry {
  /** Absolute and normalised. */
  path: string;
  /** Bytes; for a symlink the length of its target, for a directory what the file system reports. */
  size: number;
  /** Permission bits as 4 octal digits, e.g. "0644", "1777". */
  mode: string;
  /** Last modification, ISO 8601 in UTC with milliseconds. */
  mtime: string;
  type: FileType;
}

/** Longest path accepted (PATH_MAX). */
export const MAX_FILE_PATH_LENGTH = 4096;

/**
 * A client's path made absolute-and-lexically-normal (`/a/./b/../c/` → `/a/c`), or null
 * when it is not absolute, holds NUL, or is too long. `..` never climbs above `/`; what
 * the remaining components are (symlinks included) is decided by the machine's kernel
 * inside the machine's root, never on the host.
 */
export function normaliseFilePath(path: string): string | null {
  if (!path.startsWith('/') || path.includes('\0') || path.length > MAX_FILE_PATH_LENGTH) return null;
  const parts: string[] = [];
  for (const part of path.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') parts.pop();
    else parts.push(part);
  }
  return `/${parts.join('/')}`;
}

/** The file type encoded in the `S_IFMT` bits of a raw mode. */
export function fileTypeOfMode(rawMode: number): FileType | null {
  switch (rawMode & 0o170000) {
    case 0o100000:
      return 'file';
    case 0o040000:
      return 'directory';
    case 0o120000:
      return 'symlink';
    case 0o010000:
      return 'fifo';
    case 0o140000:
      return 'socket';
    case 0o020000:
      return 'char_device';
    case 0o060000:
      return 'block_device';
    default:
      return null;
  }
}

/** Permission bits (setuid, setgid, sticky and rwx) of a raw mode as 4 octal digits. */
export function formatMode(rawMode: number): string {
  return (rawMode & 0o7777).toString(8).padStart(4, '0');
}

/** True when `inner` is `outer` or lies under it (both normalised). */
export function isSameOrInside(inner: string, outer: string): boolean {
  return inner === outer || outer === '/' || inner.startsWith(`${outer}/`);
}
