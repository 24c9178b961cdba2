/** Where the runc runtime reports what it could not clean up; the server passes its logger. */
export interface RuntimeLogger {
  warn(obj: object, msg: string): void;
}

/** A logger that drops everything: the default when none is given. */
export const SILENT_LOGGER: RuntimeLogger = { warn: () => undefined };

/** The message of anything thrown. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Await a cleanup or rollback step whose failure must not replace the error being
 * handled (or fail an operation that already succeeded): a failure is logged with the
 * machine's id, never thrown. What it may leave behind is removed by a later destroy,
 * teardown or the start-up sweep, so the log is what tells a person why it lingered.
 */
export async function bestEffort(log: RuntimeLogger, machineId: string, what: string, step: Promise<unknown>): Promise<void> {
  try {
    await step;
  } catch (err) {
    log.warn({ machineId, err: errorMessage(err) }, `could not ${what}`);
  }
}
