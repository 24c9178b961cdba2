/**
 * Startup scripts: shell scripts a team keeps (`/v1/startup-scripts`) and names at a
 * machine's create. The machine keeps a copy of the script as it was then, and runs it
 * with `/bin/sh -c` after its first start, or after every start when `runOnce` is false.
 */

/** Everything stored about one script. Times are epoch milliseconds. */
export interface StartupScriptRecord {
  /** `scr_` + 16 lowercase letters and digits. */
  id: string;
  teamId: string;
  name: string;
  /** The shell text, run with `/bin/sh -c`. */
  script: string;
  /** True: only after the machine's first start; false: after every start. */
  runOnce: boolean;
  createdAt: number;
}

/** The copy of a script a machine keeps from its create: later edits or a delete of the script do not change it. */
export interface MachineStartupScript {
  /** The script it was copied from (which may since be deleted). */
  scriptId: string;
  script: string;
  runOnce: boolean;
}

/** Limits on what a request may ask for. */
export const STARTUP_SCRIPT_LIMITS = {
  /** Bytes of script text (UTF-8). */
  scriptBytes: 64 * 1024,
  nameMaxLength: 255,
  perTeam: 100,
} as const;

/** Startup script ids as a path parameter accepts them. */
export const STARTUP_SCRIPT_ID_PATTERN = /^scr_[a-z0-9]{1,64}$/;

/** The copy a machine keeps of `s`. */
export function machineCopyOf(s: StartupScriptRecord): MachineStartupScript {
  return { scriptId: s.id, script: s.script, runOnce: s.runOnce };
}

/** What a startup-script event keeps of the run: the process, its exit and the end of its output. */
export interface StartupScriptRun {
  /** The process id inside the machine (GET /v1/machines/{id}/processes/{pid}). */
  pid: number;
  /** Null while it runs. */
  exitCode: number | null;
  /** The last STARTUP_SCRIPT_OUTPUT_KEPT bytes of its output (both streams), kept when it ends. */
  output: string;
  /** Bytes of output it wrote in all. */
  outputBytes: number;
}

/** Output an event keeps of a run (the process's own output endpoint keeps up to 1 MiB while the server runs). */
export const STARTUP_SCRIPT_OUTPUT_KEPT = 16 * 1024;
