import pg from 'pg';

/**
 * `LISTEN` on one channel over a connection of its own (a pooled one would be handed to
 * other queries): `onNotify` runs for each notification, and once after every (re)connect
 * for what happened while it was not listening. A lost connection is opened again after
 * `retryMs`. The returned function stops listening and closes the connection.
 */
export function listen(
  connectionString: string,
  channel: string,
  onNotify: () => void,
  o: { retryMs?: number; onError?: (err: Error) => void } = {},
): () => Promise<void> {
  let client: pg.Client | null = null;
  let stopped = false;
  let retry: NodeJS.Timeout | null = null;
  const again = (): void => {
    if (stopped || retry) return;
    retry = setTimeout(() => {
      retry = null;
      void connect();
    }, o.retryMs ?? 1_000);
    retry.unref();
  };
  const connect = async (): Promise<void> => {
    const c = new pg.Client({ connectionString });
    c.on('notification', (n) => {
      if (n.channel === channel) onNotify();
    });
    c.on('error', (err) => {
      o.onError?.(err);
      if (client === c) client = null;
      void c.end().catch(() => undefined);
      again();
    });
    c.on('end', () => {
      if (client === c) client = null;
      again();
    });
    try {
      await c.connect();
      // A channel is an identifier: quoted, so its case and characters are kept.
      await c.query(`LISTEN "${channel.replace(/"/g, '""')}"`);
    } catch (err) {
      o.onError?.(err as Error);
      await c.end().catch(() => undefined);
      again();
      return;
    }
    if (stopped) {
      await c.end().catch(() => undefined);
      return;
    }
    client = c;
    onNotify();
  };
  void connect();
  return async () => {
    stopped = true;
    if (retry) clearTimeout(retry);
    retry = null;
    const c = client;
    client = null;
    await c?.end().catch(() => undefined);
  };
}
