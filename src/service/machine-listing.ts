import { MACHINE_STATUSES } from '../domain/machine.js';
import { canonicalJson } from '../domain/metadata.js';
import type { Caller } from '../domain/team.js';
import type { ListCursor } from '../store/store.js';
import { isLive } from '../domain/transitions.js';
import { listingNarrowedTo } from './access.js';
import { CursorCodec, NEXT_TOKEN_FORMAT } from './cursor-codec.js';
import type { MachineCore } from './machine-core.js';
import type { ListMachinesInput, MachinePage } from './machine-inputs.js';

const LIVE_STATUSES = MACHINE_STATUSES.filter(isLive);

/** The native machine listing: filters, access narrowing and signed keyset cursors. */
export class MachineListing {
  private readonly cursors: CursorCodec<ListCursor>;

  constructor(private readonly core: MachineCore) {
    this.cursors = new CursorCodec(core.o.secret, NEXT_TOKEN_FORMAT);
  }

  /** List the caller's machines, newest first (destroyed ones only when asked for by state). */
  async list(caller: Caller, input: ListMachinesInput): Promise<MachinePage> {
    const { store } = this.core;
    const statuses = input.states ?? LIVE_STATUSES;
    if (!input.paginated) {
      const items = await store.listMachines({ teamId: caller.team.id, statuses, visibleTo: listingNarrowedTo(caller) });
      return { items, nextToken: null };
    }
    // The cursor is bound to the filters, not to how the client spelled them.
    const scope = canonicalJson([[...statuses].sort(), input.template ?? null, input.metadata ?? null]);
    const after = input.nextToken === undefined ? undefined : this.cursors.decode(input.nextToken, caller.team.id, scope);
    const limit = input.limit ?? 100;
    const rows = await store.listMachines({
      teamId: caller.team.id,
      statuses,
      template: input.template,
      metadata: input.metadata,
      after,
      limit: limit + 1,
      visibleTo: listingNarrowedTo(caller),
    });
    const items = rows.slice(0, limit);
    const last = items[items.length - 1];
    const nextToken = rows.length > limit && last ? this.cursors.encode({ createdAt: last.createdAt, id: last.id }, caller.team.id, scope) : null;
    return { items, nextToken };
  }
}
