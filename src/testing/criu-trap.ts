/**
 * A CRIU that is SIGKILLed at a chosen point, for tests: a shell script given to the
 * server as its criu binary (HANGAR_CRIU). It runs the real CRIU for every call; once a
 * trap is armed, the next dump or restore of a snapshot is killed at the moment CRIU opens
 * the named image file. The point is reached by an event, never by a timer: the script
 * puts a FIFO where that image goes, and opening a FIFO waits for its other end, so the
 * script's own open returns exactly when CRIU's does; then it kills CRIU (the process
 * runc started, as the OOM killer would, not its restored children) and puts everything
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
armed='${dir}/armed'; sprung='${dir}/sprung'; held='${dir}/held.img'
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
${REAL_CRIU} "$@" & criu=$!
# The other end of the FIFO: its open returns when CRIU's does. It holds no copy of runc's socket.
(
  exec 3>&-
  if [ $mode = dump ]; then exec 4< "$fifo"; else exec 4> "$fifo"; fi
  kill -9 $criu && echo "killed $mode $image" > "$sprung"
) & opener=$!
wait $criu; status=$?
kill $opener 2> /dev/null; wait $opener
[ -e "$sprung" ] || echo "not sprung: CRIU ended ($status) without opening $image" > "$sprung"
rm -f "$fifo"
[ $mode = restore ] && mv "$held" "$fifo"
exit $status
`;
}
