import type { StartupScriptRecord } from '../../domain/startup-script.js';

/** The API form of a startup script (component `StartupScript`). */
export function renderStartupScript(s: StartupScriptRecord): Record<string, unknown> {
  return { id: s.id, name: s.name, script: s.script, run_once: s.runOnce, created_at: new Date(s.createdAt).toISOString() };
}
