/**
 * A store part whose every method call goes through `around`, which makes the call (once,
 * or again) and may change how it fails: the busy handling of both stores (sqlite/busy.ts
 * retries while the file is locked; postgres/busy.ts names a lock or pool wait STORE_BUSY).
 */
export function aroundEveryMethod<T extends object>(part: T, around: (call: () => Promise<unknown>) => Promise<unknown>): T {
  return new Proxy(part, {
    get(target, key, receiver) {
      const value: unknown = Reflect.get(target, key, receiver);
      if (typeof value !== 'function') return value;
      const method = value as (...args: unknown[]) => Promise<unknown>;
      return (...args: unknown[]) => around(async () => method.apply(target, args));
    },
  });
}
