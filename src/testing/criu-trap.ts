/**
 * A CRIU that is SIGKILLed at a chosen point, for tests: a shell script given to the
 * server as its criu binary (HANGAR_CRIU). It runs the real CRIU for every call; once a
 * trap is armed, the next dump or restore of a snapshot is killed at the moment CRIU opens
 * the named image file. The point is reached by an event, never by a timer: the script
 * puts a FIFO where that image goes. A restore's open of it waits for the script's own,
 * and CRIU then waits to read; a dump's open returns at once onto a pipe the script has
 * filled, and CRIU waits to write, while the script sees the image among CRIU's open
 * files. Either way CRIU is held at that image when it is killed (the process runc
 * started, as the OOM killer would, not its restored children); then everything is put
 * back as it was: the FIFO goes, a restore's image file returns unchanged.
 */
import { chmod, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** Where the real CRIU is. */
const REAL_CRIU = '/usr/sbin/criu';

/** One trap per test server: its script, and the files by which a test arms it and learns that it sprang. */
export class CriuTrap {
  private constructor(
    /** The directory of the script and its state (under the test's own temporary directory). */
    readonly dir: string,
  ) {}

  /** The script to pass as HANGAR_CRIU. */
  get criuPath(): string {
    return join(this.dir, 'criu');
  }

  /** Write the script into `dir`; `snapshotsDir` is the server's, whose images it may trap. */
  static async create(dir: string, snapshotsDir: string): Promise<CriuTrap> {
    await mkdir(dir, { recursive: true });
    const trap = new CriuTrap(dir);
    await writeFile(trap.criuPath, script(dir, snapshotsDir));
    await chmod(trap.criuPath, 0o755);
    return trap;
  }

  /** Kill the next dump or restore when CRIU opens `image` (e.g. `pages-1.img`) of the snapshot's images. */
  async arm(image: string): Promise<void> {
    await rm(join(this.dir, 'sprung'), { force: true });
    await rm(join(this.dir, 'killing'), { force: true });
    await writeFile(join(this.dir, 'armed'), `${image}\n`);
  }

  /** What the trap did: null while armed or never armed, else `killed <dump|restore> <image>` or why it did not spring. */
  async outcome(): Promise<string | null> {
    return (await readFile(join(this.dir, 'sprung'), 'utf8').catch(() => null))?.trim() ?? null;
  }

  /** True while a trap waits for its dump or restore. */
  async armed(): Promise<boolean> {
    return (await stat(join(this.dir, 'armed')).catch(() => null)) !== null;
  }
}

/**
 * The script. runc talks to CRIU over a socket (`criu swrk 3`) and hands it the images
 * directory as one of runc's own descriptors, so the script finds the directory among
 * its parent's open files; runc's other CRIU calls (the version query) have none and run
 * untouched.
 */
function script(dir: string, snapshotsDir: string): string {
  return `#!/bin/sh
armed='${dir}/armed'; sprung='${dir}/sprung'; held='${dir}/held.img'; killing='${dir}/killing'
[ "$1" = swrk ] && [ -e "$armed" ] || exec ${REAL_CRIU} "$@"
images=
for fd in /proc/$PPID/fd/*; do
  target=$(readlink "$fd") || continue
  case "$target" in '${snapshotsDir}'/*/criu) images=$target ;; esac
done
[ -n "$images" ] || exec ${REAL_CRIU} "$@"
read -r image < "$armed"; rm -f "$armed"
fifo="$images/$image"
if [ -e "$fifo" ]; then mode=restore; mv "$fifo" "$held"; else mode=dump; fi
mkfifo "$fifo"
if [ $mode = dump ]; then
  # Both ends held here, the pipe filled: CRIU's open returns at once and its first write
  # to the image blocks, so it stays where the trap caught it (an image of a few bytes
  # would otherwise go through, and CRIU move on, before the kill lands).
  exec 9<> "$fifo"
  dd if=/dev/zero bs=4096 count=1024 oflag=nonblock >&9 2> /dev/null
fi
${REAL_CRIU} "$@" 9>&- & criu=$!
# The other end: it learns that CRIU holds the image open (a restore's open of the FIFO
# returns when this one's does; a dump's open shows among CRIU's files, and its write
# waits on the full pipe). It holds no copy of runc's socket.
(
  exec 3>&-
  if [ $mode = dump ]; then
    until ls -l /proc/$criu/fd 2> /dev/null | grep -q " -> $fifo\\$"; do
      kill -0 $criu 2> /dev/null || exit 0
      sleep 0.01
    done
  else
    exec 4> "$fifo"
  fi
  : > "$killing"
  kill -9 $criu && echo "killed $mode $image" > "$sprung"
) & opener=$!
exec 9>&-
wait $criu; status=$?
# Once the opener is killing CRIU, it is waited for (it writes what it did); else it is stopped.
if [ -e "$killing" ]; then wait $opener; else kill $opener 2> /dev/null; wait $opener; fi
rm -f "$killing"
[ -e "$sprung" ] || echo "not sprung: CRIU ended ($status) without opening $image" > "$sprung"
rm -f "$fifo"
[ $mode = restore ] && mv "$held" "$fifo"
exit $status
`;
}
