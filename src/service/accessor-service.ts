import { HangarError, validationError } from '../domain/errors.js';
import { seesWholeTeam, type Caller, type MachineAccessor, type User } from '../domain/team.js';
import type { MachineRecord } from '../domain/machine.js';
import type { Store } from '../store/store.js';
import type { MachineService } from './machine-service.js';
import { comparePositions, CursorCodec, pageCursorFormat, type PagePosition } from './cursor-codec.js';
import type { ServerSecret } from './secrets.js';
import { isLive } from '../domain/transitions.js';

/** An accessor with the user it names. */
export interface AccessorWithUser {
  accessor: MachineAccessor;
  user: User;
}

/** A page request over a machine's accessors, ordered by user id. */
export interface AccessorListInput {
  after?: string;
  limit: number;
  order: 'asc' | 'desc';
}

/** What the accessor service needs. */
export interface AccessorServiceOptions {
  store: Store;
  machines: MachineService;
  secret: ServerSecret;
  now: () => number;
}

/**
 * Machine accessors: users of the team granted a machine they did not create. Anyone
 * who reaches the machine may read them; its creator and team admins may change them.
 */
export class AccessorService {
  private readonly cursors: CursorCodec;

  constructor(private readonly o: AccessorServiceOptions) {
    this.cursors = new CursorCodec(o.secret, pageCursorFormat('paperspace-accessors'));
  }

  private async managed(caller: Caller, machineId: string): Promise<MachineRecord> {
    const m = await this.o.machines.get(caller, machineId);
    if (!seesWholeTeam(caller) && m.createdBy !== caller.user!.id) {
      throw new HangarError('FORBIDDEN', `Only the creator of machine ${machineId} or a team admin can change who accesses it.`);
    }
    return m;
  }

  /** Users named by id, all of the caller's team, or a 400 naming the first unknown one. */
  async users(caller: Caller, userIds: readonly string[], field = 'userId'): Promise<User[]> {
    const out: User[] = [];
    for (const id of userIds) {
      const user = await this.o.store.getUser(id);
      if (!user || user.teamId !== caller.team.id) {
        throw validationError([{ field, message: `no user ${id} in this team; an admin lists them with GET /v1/admin/teams/${caller.team.id}/users` }]);
      }
      out.push(user);
    }
    return out;
  }

  /** A page of the machine's accessors. */
  async list(caller: Caller, machineId: string, input: AccessorListInput): Promise<{ items: AccessorWithUser[]; hasMore: boolean; nextPage: string | null }> {
    await this.o.machines.get(caller, machineId);
    const scope = JSON.stringify([machineId, input.order]);
    const after = input.after === undefined ? undefined : this.cursors.decode(input.after, caller.team.id, scope);
    const sign = input.order === 'asc' ? 1 : -1;
    const rows = (await this.o.store.listAccessors(machineId))
      .map((a) => ({ a, pos: [a.userId, a.userId] as PagePosition }))
      .sort((x, y) => sign * comparePositions(x.pos, y.pos))
      .filter((r) => !after || sign * comparePositions(r.pos, after) > 0);
    const page = rows.slice(0, input.limit);
    const hasMore = rows.length > input.limit;
    const items: AccessorWithUser[] = [];
    for (const r of page) {
      const user = await this.o.store.getUser(r.a.userId);
      if (user) items.push({ accessor: r.a, user });
    }
    const last = page[page.length - 1];
    return { items, hasMore, nextPage: hasMore && last ? this.cursors.encode(last.pos, caller.team.id, scope) : null };
  }

  /** Grant a user of the team access; granting an active accessor again changes nothing. */
  async add(caller: Caller, machineId: string, userId: string): Promise<AccessorWithUser> {
    const m = await this.managed(caller, machineId);
    if (!isLive(m.status)) {
      throw new HangarError('STATE_CONFLICT', `Machine ${machineId} is deleted; nobody can be given access to it.`, { status: m.status });
    }
    const [user] = await this.users(caller, [userId]);
    return this.grant(m.id, user!);
  }

  /** Grant access at create time, to users already checked with `users()`. */
  async grant(machineId: string, user: User): Promise<AccessorWithUser> {
    const existing = await this.o.store.getAccessor(machineId, user.id);
    if (existing && existing.deletedAt === null) return { accessor: existing, user };
    const accessor: MachineAccessor = { machineId, userId: user.id, createdAt: this.o.now(), deletedAt: null };
    await this.o.store.putAccessor(accessor);
    return { accessor, user };
  }

  /** An active accessor of the machine, or NOT_FOUND. */
  async get(caller: Caller, machineId: string, userId: string): Promise<AccessorWithUser> {
    await this.o.machines.get(caller, machineId);
    return this.active(machineId, userId);
  }

  private async active(machineId: string, userId: string): Promise<AccessorWithUser> {
    const accessor = await this.o.store.getAccessor(machineId, userId);
    const user = accessor && accessor.deletedAt === null ? await this.o.store.getUser(userId) : null;
    if (!accessor || !user) throw new HangarError('NOT_FOUND', `User ${userId} is not an accessor of machine ${machineId}.`);
    return { accessor, user };
  }

  /** Remove an accessor; answers it with `deletedAt` set. */
  async remove(caller: Caller, machineId: string, userId: string): Promise<AccessorWithUser> {
    await this.managed(caller, machineId);
    const { accessor, user } = await this.active(machineId, userId);
    const at = this.o.now();
    if (!(await this.o.store.removeAccessor(machineId, userId, at))) {
      throw new HangarError('NOT_FOUND', `User ${userId} is not an accessor of machine ${machineId}.`);
    }
    return { accessor: { ...accessor, deletedAt: at }, user };
  }
}
