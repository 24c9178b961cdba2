import { HangarError, startupScriptNotFound } from '../domain/errors.js';
import { newStartupScriptId } from '../domain/ids.js';
import { machineCopyOf, STARTUP_SCRIPT_LIMITS, type MachineStartupScript, type StartupScriptRecord } from '../domain/startup-script.js';
import type { Caller } from '../domain/team.js';
import type { Store } from '../store/store.js';

/** A create request after validation at the edge. */
export interface CreateStartupScriptInput {
  name: string;
  script: string;
  /** @default false */
  runOnce?: boolean;
}

/** Dependencies of the startup script service. */
export interface StartupScriptServiceOptions {
  store: Store;
  /** @default Date.now */
  now?: () => number;
}

/** The 422 of a create naming a script the team does not have (nothing is created). */
export function unknownStartupScript(id: string): HangarError {
  return new HangarError(
    'UNKNOWN_STARTUP_SCRIPT',
    `Startup script ${id} does not exist for this team; list yours with GET /v1/startup-scripts, or create one with POST /v1/startup-scripts.`,
    { startup_script_id: id },
  );
}

/**
 * The copy of a team's script a machine create keeps, or 422 UNKNOWN_STARTUP_SCRIPT
 * (another team's script is unknown too).
 */
export async function startupScriptCopy(store: Store, teamId: string, id: string): Promise<MachineStartupScript> {
  const s = await store.getStartupScript(id);
  if (!s || s.teamId !== teamId) throw unknownStartupScript(id);
  return machineCopyOf(s);
}

/**
 * A team's startup scripts: create, list, get, delete. Scripts are immutable: a machine
 * keeps a copy from its create, so an edit would change nothing already created; make a
 * new script instead. Every key and user of the team sees the team's scripts; other
 * teams' are missing (404).
 */
export class StartupScriptService {
  private readonly now: () => number;

  constructor(private readonly o: StartupScriptServiceOptions) {
    this.now = o.now ?? Date.now;
  }

  /** Keep a new script for the caller's team; 429 once the team has STARTUP_SCRIPT_LIMITS.perTeam. */
  async create(caller: Caller, input: CreateStartupScriptInput): Promise<StartupScriptRecord> {
    const s: StartupScriptRecord = {
      id: newStartupScriptId(),
      teamId: caller.team.id,
      name: input.name,
      script: input.script,
      runOnce: input.runOnce ?? false,
      createdAt: this.now(),
    };
    if (!(await this.o.store.insertStartupScript(s, STARTUP_SCRIPT_LIMITS.perTeam))) {
      throw new HangarError('CAPACITY_EXCEEDED', `This team has ${STARTUP_SCRIPT_LIMITS.perTeam} startup scripts, as many as a team may; delete one first.`);
    }
    return s;
  }

  /** The team's scripts, newest first. */
  list(caller: Caller): Promise<StartupScriptRecord[]> {
    return this.o.store.listStartupScripts(caller.team.id);
  }

  /** One of the team's scripts, or NOT_FOUND (also when another team's). */
  async get(caller: Caller, id: string): Promise<StartupScriptRecord> {
    const s = await this.o.store.getStartupScript(id);
    if (!s || s.teamId !== caller.team.id) throw startupScriptNotFound(id);
    return s;
  }

  /** Delete a script; machines created with it keep (and still run) their copies. */
  async delete(caller: Caller, id: string): Promise<void> {
    await this.get(caller, id);
    if (!(await this.o.store.deleteStartupScript(id))) throw startupScriptNotFound(id);
  }
}
