/**
 * The shell scripts that do file operations inside a machine, and the parsers of what
 * they print. They run with the machine's own `/bin/sh` and busybox-style tools as a
 * new process in the machine (like an exec): every path is resolved by the kernel in
 * the machine's mount namespace and root, so `..`, absolute symlinks and symlinks
 * swapped in mid-request can only ever reach the machine's own files. User paths are
 * passed as arguments ("$1"), never pasted into the script text.
 */
import { posix } from 'node:path';
import { HangarError, type ErrorCode } from '../domain/errors.js';
import { fileTypeOfMode, formatMode, type FileEntry } from '../domain/file-entry.js';

/** Exit codes the scripts use for the outcomes they detect themselves. */
export const SCRIPT_EXIT = {
  notFound: 3,
  isDirectory: 4,
  notDirectory: 5,
  notRegularFile: 6,
  exists: 7,
  shortBody: 8,
  /** A tool (cat, mv, tar, ...) failed; its message is on stderr. */
  toolFailed: 9,
  /** move: the destination's parent is missing. */
  parentMissing: 10,
  /** move: the destination's parent is not a directory. */
  parentNotDirectory: 11,
} as const;

/** `stat -c` format of every stat line: raw mode (hex), size, mtime (UTC under TZ=UTC0). */
const STAT = "stat -c '%f %s %y'";

const PRELUDE = `
exists() { [ -e "$1" ] || [ -L "$1" ]; }
`;

/** The scripts, by operation. Positional arguments are documented beside each. */
export const FILE_SCRIPTS = {
  /** $1 path → one stat line. */
  stat: `${PRELUDE}
exists "$1" || exit 3
${STAT} -- "$1" || exit 9
`,
  /** $1 directory (a symlink to one is followed; a dangling one is not found) → per entry: a stat line (or "-" when it vanished meanwhile), then its name and NUL. */
  list: `${PRELUDE}
[ -e "$1" ] || exit 3
[ -d "$1" ] || exit 5
cd -- "$1" || exit 9
for f in .* *; do
  case $f in .|..) continue ;; esac
  exists "$f" || continue
  ${STAT} -- "$f" 2>/dev/null || echo -
  printf '%s\\0' "$f"
done
`,
  /** $1 directory (created with its parents) → its stat line. */
  mkdir: `${PRELUDE}
if exists "$1" && [ ! -d "$1" ]; then exit 5; fi
mkdir -p -- "$1" || exit 9
${STAT} -- "$1" || exit 9
`,
  /** $1 path → nothing; removes a file, a symlink (not its target) or a whole directory tree. */
  remove: `${PRELUDE}
exists "$1" || exit 3
rm -rf -- "$1" || exit 9
`,
  /** $1 from, $2 to (must not exist; its parent must) → the stat line of $2. */
  move: `${PRELUDE}
exists "$1" || exit 3
exists "$2" && exit 7
p=\${2%/*}
[ -n "$p" ] || p=/
exists "$p" || exit 10
[ -d "$p" ] || exit 11
mv -T -- "$1" "$2" || exit 9
${STAT} -- "$2" || exit 9
`,
  /**
   * $1 path, $2 temporary file name, $3 expected size or "" → the stat line of $1.
   * stdin is written to a new temporary file beside $1 (missing parents are created),
   * checked, then renamed over $1 in one step: readers see the old file or the new one,
   * and a failure (a full disk) leaves neither the temporary file nor the parents it made.
   * The directory is entered once (cd), so a parent symlink the machine flips meanwhile
   * cannot split the write, the check and the rename across two directories.
   */
  write: `${PRELUDE}
set -C
[ -d "$1" ] && exit 4
d=\${1%/*}
[ -n "$d" ] || d=/
first=
a=$d
while ! exists "$a"; do first=$a; a=\${a%/*}; [ -n "$a" ] || a=/; done
[ -d "$a" ] || exit 5
if [ -n "$first" ]; then mkdir -p -- "$d" || exit 9; fi
cd -- "$d" || exit 9
b=./\${1##*/}
t=./$2
clean() { rm -f -- "$t"; [ -z "$first" ] || rm -rf -- "$first"; }
cat > "$t" || { clean; exit 9; }
if [ -n "$3" ] && [ "$(stat -c %s -- "$t")" != "$3" ]; then clean; exit 8; fi
if [ -f "$b" ] && [ ! -L "$b" ]; then chmod "$(stat -c %a -- "$b")" -- "$t" 2>/dev/null; fi
mv -f -T -- "$t" "$b" || { clean; exit 9; }
${STAT} -- "$b" || exit 9
`,
  /** $1 temporary file → nothing; removes what an interrupted write left. */
  cleanup: `rm -f -- "$1"`,
  /**
   * $1 path → a line with the size, then the bytes. The file is opened once: the size and
   * the bytes come from the same open file, even if the path is replaced meanwhile. `cat`
   * (not `head -c`, which copies in small pieces and is several times slower) may send more
   * than the size if the file grows meanwhile; the reader keeps only the size it announced.
   */
  read: `${PRELUDE}
[ -e "$1" ] || exit 3
[ -d "$1" ] && exit 4
[ -f "$1" ] || exit 6
exec 3< "$1" || exit 9
[ -f /proc/self/fd/3 ] || { [ -d /proc/self/fd/3 ] && exit 4; exit 6; }
n=$(stat -L -c %s /proc/self/fd/3 2>/dev/null || stat -L -c %s -- "$1") || exit 9
printf '%s\\n' "$n"
exec cat <&3
`,
  /** $1 directory → a line "ok", then a tar stream of its contents (entries named ./…). */
  archive: `${PRELUDE}
[ -e "$1" ] || exit 3
[ -d "$1" ] || exit 5
cd -- "$1" || exit 9
echo ok
exec tar -c -f - .
`,
  /**
   * $1 directory (created with its parents) ← a tar stream on stdin → the stat line of $1.
   * When the extraction fails, directories this call created are removed again; in a
   * directory that existed, the entries extracted before the failure stay.
   */
  extract: `${PRELUDE}
if exists "$1" && [ ! -d "$1" ]; then exit 5; fi
first=
a=$1
while ! exists "$a"; do first=$a; a=\${a%/*}; [ -n "$a" ] || a=/; done
[ -d "$a" ] || exit 5
mkdir -p -- "$1" || exit 9
cd -- "$1" || exit 9
tar -x -o -f - || { cd /; [ -z "$first" ] || rm -rf -- "$first"; exit 9; }
${STAT} -- "$1" || exit 9
`,
} as const;

export type FileOperation = keyof typeof FILE_SCRIPTS;

const STAT_LINE = /^([0-9a-f]+) (\d+) (\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d)(?:\.(\d+))? ([+-]\d\d)(\d\d)$/;

/** Parse one stat line (`%f %s %y`) into an entry for `path`; null when it is not one. */
export function parseStatLine(line: string, path: string): FileEntry | null {
  const m = STAT_LINE.exec(line.trim());
  if (!m) return null;
  const rawMode = parseInt(m[1]!, 16);
  const type = fileTypeOfMode(rawMode);
  const ms = Date.parse(`${m[3]}T${m[4]}.${(m[5] ?? '').padEnd(3, '0').slice(0, 3)}${m[6]}:${m[7]}`);
  if (type === null || Number.isNaN(ms)) return null;
  return { path, size: Number(m[2]), mode: formatMode(rawMode), mtime: new Date(ms).toISOString(), type };
}

/** Parse the list script's output (stat line, newline, name, NUL; repeated) into entries sorted by name. */
export function parseListing(out: Buffer, dir: string): FileEntry[] {
  const entries: FileEntry[] = [];
  let at = 0;
  while (at < out.length) {
    const nl = out.indexOf(0x0a, at);
    if (nl < 0) break;
    const nul = out.indexOf(0x00, nl + 1);
    if (nul < 0) break;
    const line = out.subarray(at, nl).toString('utf8');
    const name = out.subarray(nl + 1, nul).toString('utf8');
    at = nul + 1;
    if (line === '-' || name === '' || name.includes('/')) continue;
    const entry = parseStatLine(line, posix.join(dir, name));
    if (entry) entries.push(entry);
  }
  return entries.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** What a failed script was doing, for the error message. */
export interface FailureContext {
  machineId: string;
  /** The verb of the message: "read", "write", "list", ... */
  action: string;
  path: string;
  /** For move: the destination. */
  to?: string;
  /** For DISK_FULL messages. */
  diskMb?: number;
  /** For DISK_FULL messages: the mount path of the volume `path` is on, when it is on one. */
  volumeMountPath?: string;
  /** What a full disk left behind, for DISK_FULL messages. @default 'nothing was changed' */
  diskFullNote?: string;
  /** Tar failures that are about the archive itself become INVALID_ARCHIVE. */
  archiveInput?: boolean;
}

/** The last meaningful line of a tool's stderr, shortened. */
function reasonOf(stderr: string): string {
  const lines = stderr.split('\n').map((l) => l.trim()).filter(Boolean);
  const last = lines.at(-1) ?? '';
  return last.length > 300 ? `${last.slice(0, 300)}…` : last;
}

function classifyTool(stderr: string, c: FailureContext): ErrorCode {
  if (/No space left on device|Disk quota exceeded|File too large/i.test(stderr)) return 'DISK_FULL';
  if (c.archiveInput && /invalid tar|short read|unexpected end|corrupted|bad header|magic|checksum|invalid (octal|number)/i.test(stderr)) {
    return 'INVALID_ARCHIVE';
  }
  if (/Read-only file system|Permission denied|Operation not permitted/i.test(stderr)) return 'PATH_PERMISSION_DENIED';
  if (/No such file or directory/i.test(stderr)) return 'PATH_NOT_FOUND';
  if (/Not a directory/i.test(stderr)) return 'NOT_A_DIRECTORY';
  if (/Is a directory/i.test(stderr)) return 'IS_A_DIRECTORY';
  if (/File exists|Directory not empty/i.test(stderr)) return 'PATH_EXISTS';
  return 'FILE_OPERATION_FAILED';
}

/** The catalogue error for a script that exited `exitCode` with `stderr`. */
export function scriptFailure(exitCode: number, stderr: string, c: FailureContext): HangarError {
  const where = `in machine ${c.machineId}`;
  const parent = c.to === undefined ? '' : posix.dirname(c.to);
  switch (exitCode) {
    case SCRIPT_EXIT.notFound:
      return new HangarError('PATH_NOT_FOUND', `Cannot ${c.action} ${c.path}: no such file or directory ${where}.`, { path: c.path });
    case SCRIPT_EXIT.isDirectory:
      return new HangarError('IS_A_DIRECTORY', `Cannot ${c.action} ${c.path}: it is a directory ${where}; name a file.`, { path: c.path });
    case SCRIPT_EXIT.notDirectory:
      return new HangarError('NOT_A_DIRECTORY', `Cannot ${c.action} ${c.path}: it (or one of its parents) is not a directory ${where}.`, { path: c.path });
    case SCRIPT_EXIT.notRegularFile:
      return new HangarError('NOT_A_REGULAR_FILE', `Cannot ${c.action} ${c.path}: it is not a regular file (a device, FIFO or socket) ${where}.`, { path: c.path });
    case SCRIPT_EXIT.exists:
      return new HangarError('PATH_EXISTS', `Cannot ${c.action} to ${c.to ?? c.path}: it already exists ${where}; delete it first.`, { path: c.to ?? c.path });
    case SCRIPT_EXIT.shortBody:
      return new HangarError('VALIDATION_FAILED', `The body ended before Content-Length bytes; ${c.path} was not changed.`, {
        fields: [{ field: 'body', message: 'shorter than Content-Length' }],
      });
    case SCRIPT_EXIT.parentMissing:
      return new HangarError('PATH_NOT_FOUND', `Cannot ${c.action} to ${c.to}: its parent directory ${parent} does not exist ${where}.`, { path: parent });
    case SCRIPT_EXIT.parentNotDirectory:
      return new HangarError('NOT_A_DIRECTORY', `Cannot ${c.action} to ${c.to}: ${parent} is not a directory ${where}.`, { path: parent });
  }
  const reason = reasonOf(stderr) || `exit status ${exitCode}`;
  const code = classifyTool(stderr, c);
  switch (code) {
    case 'DISK_FULL': {
      if (c.volumeMountPath !== undefined) {
        return new HangarError(
          'DISK_FULL',
          `Cannot ${c.action} ${c.path}: the volume mounted at ${c.volumeMountPath} is full; ${c.diskFullNote ?? 'nothing was changed'}. Free space on it, or use a larger volume.`,
          { path: c.path },
        );
      }
      const quota = c.diskMb === undefined ? '' : ` (config.disk_mb is ${c.diskMb})`;
      return new HangarError('DISK_FULL', `Cannot ${c.action} ${c.path}: the machine's disk is full${quota}; ${c.diskFullNote ?? 'nothing was changed'}. Free space or use a machine with a larger disk.`, { path: c.path });
    }
    case 'INVALID_ARCHIVE':
      return new HangarError('INVALID_ARCHIVE', `The body is not a tar archive that can be extracted into ${c.path} (${reason}).`, { path: c.path });
    default:
      return new HangarError(code, `Cannot ${c.action} ${c.path} ${where}: ${reason}.`, { path: c.path });
  }
}
