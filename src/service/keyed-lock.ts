import { HangarError } from '../domain/errors.js';

/**
 * One operation at a time per machine. A second operation on a busy machine is
 * refused with 409 rather than queued: the caller learns the state changed under it.
 */
export class MachineLocks {
  private readonly busy = new Map<string, string>();

  /** Run `fn` holding the lock of `id`, or throw STATE_CONFLICT naming the running operation. */
  async with<T>(id: string, operation: string, fn: () => Promise<T>): Promise<T> {
    const current = this.busy.get(id);
    if (current !== undefined) {
      throw new HangarError('STATE_CONFLICT', `Machine ${id} is busy with ${current}; retry when it has finished.`, {
        operation: current,
      });
    }
    this.busy.set(id, operation);
    try {
      return await fn();
    } finally {
      this.busy.delete(id);
    }
  }

  /** True while an operation holds the machine. */
  isBusy(id: string): boolean {
    return this.busy.has(id);
  }
}
