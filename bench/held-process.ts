/**
 * A process inside a machine (or podman container) that the snapshot benchmarks
 * check after every resume: same pid, still `sh`, still a child of init, still
 * holding its memory. Needs busybox only: the memory is shell variables filled from
 * /dev/zero (no tmpfs, no mount).
 */
import { readFile } from 'node:fs/promises';

/** Runs argv inside the machine and resolves with its stdout; rejects on a non-zero exit. */
export type Exec = (argv: string[]) => Promise<string>;

/** Where the holder writes its pid once its memory is filled. */
export const HOLDER_PID_FILE = '/tmp/hangar-bench-holder.pid';

/** One shell variable per 16 MiB: a single 256 MiB `$(…)` peaks at twice its size while ash grows its buffer. */
const CHUNK_MIB = 16;

/** What /proc/<pid>/status says about the holder. */
export interface HolderState {
  pid: number;
  ppid: number;
  name: string;
  rssKiB: number;
}

/** Shell text for `sh -c`: touch `mib` MiB in shell variables, write the pid, then wait forever (a loop, so ash cannot exec into sleep). */
export function holderScript(mib: number): string {
  const chunks = Math.ceil(mib / CHUNK_MIB);
  return (
    `i=0; while [ $i -lt ${chunks} ]; do i=$((i+1)); ` +
    `eval "x$i=\\$(head -c ${CHUNK_MIB * 1024 * 1024} /dev/zero | tr '\\\\0' a)"; done; ` +
    `echo $$ > ${HOLDER_PID_FILE}; while :; do sleep 3600; done`
  );
}

/**
 * argv that starts the holder in the background and returns at once. The holder is
 * re-parented to the machine's init: CRIU dumps only init's process tree, and a
 * process still under its exec session is dropped by a checkpoint without an error.
 */
export function startHolderArgv(mib: number): string[] {
  return ['sh', '-c', 'sh -c "$1" > /dev/null 2>&1 &', 'sh', holderScript(mib)];
}

/** Parse /proc/<pid>/status. */
export function parseStatus(pid: number, text: string): HolderState {
  const field = (name: string): string => new RegExp(`^${name}:\\s*(.*)$`, 'm').exec(text)?.[1]?.trim() ?? '';
  return { pid, ppid: Number(field('PPid')), name: field('Name'), rssKiB: Number.parseInt(field('VmRSS'), 10) || 0 };
}

/** The holder's state, or null when no process has that pid. */
export async function holderState(exec: Exec, pid: number): Promise<HolderState | null> {
  const text = await exec(['cat', `/proc/${pid}/status`]).catch(() => null);
  return text === null ? null : parseStatus(pid, text);
}

/** Start the holder and wait (at most `timeoutMs`) until it has filled its memory. */
export async function startHolder(exec: Exec, mib: number, timeoutMs = 60_000): Promise<HolderState> {
  await exec(startHolderArgv(mib));
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    const pid = Number((await exec(['cat', HOLDER_PID_FILE]).catch(() => '')).trim());
    if (pid > 0) {
      const state = await holderState(exec, pid);
      if (!state) throw new Error(`the holder process (pid ${pid}) died after filling ${mib} MiB`);
      checkHolder(state, state, mib, 'after start');
      return state;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`the holder process did not fill ${mib} MiB within ${timeoutMs} ms`);
}

/** Throw unless `now` is the same holder as `first`: same pid, `sh`, child of init, holding at least 95% of `mib`. */
export function checkHolder(first: HolderState, now: HolderState | null, mib: number, when: string): void {
  const problem =
    now === null ? 'is gone'
    : now.name !== 'sh' ? `is now "${now.name}", not sh`
    : now.ppid !== 1 ? `has parent ${now.ppid}, not init (CRIU would not dump it)`
    : now.rssKiB < mib * 1024 * 0.95 ? `holds ${now.rssKiB} KiB, less than ${mib} MiB`
    : null;
  if (problem) throw new Error(`holder process pid ${first.pid} ${problem} ${when}`);
}

/** memory.usage_in_bytes of a memory cgroup (v1), given its path below the controller's mount. */
export async function memoryUsageBytes(cgroupPath: string): Promise<number> {
  return Number((await readFile(`/sys/fs/cgroup/memory${cgroupPath}/memory.usage_in_bytes`, 'utf8')).trim());
}
