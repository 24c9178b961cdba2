import type { ServerResponse } from 'node:http';
import type { FastifyReply } from 'fastify';

/** A comment line this often stops proxies from closing a quiet stream. */
const KEEP_ALIVE_MS = 15_000;

/** A text/event-stream (server-sent events) answer written on the raw response, which Fastify hands over. */
export class EventStream {
  private readonly raw: ServerResponse;
  private readonly keepAlive: NodeJS.Timeout;

  constructor(reply: FastifyReply) {
    reply.hijack();
    this.raw = reply.raw;
    this.raw.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      // Proxies such as nginx would otherwise buffer the events.
      'x-accel-buffering': 'no',
    });
    this.keepAlive = setInterval(() => void this.write(': keep-alive\n\n'), KEEP_ALIVE_MS);
    this.keepAlive.unref();
    this.raw.once('close', () => clearInterval(this.keepAlive));
  }

  /** Send one event (with an id a reconnecting EventSource sends back as Last-Event-ID); resolves once the socket can take more (backpressure reaches the command). */
  send(event: string, data: unknown, id?: string): Promise<void> {
    return this.write(`event: ${event}\n${id === undefined ? '' : `id: ${id}\n`}data: ${JSON.stringify(data)}\n\n`);
  }

  /** End the stream (a no-op once the response has ended). */
  end(): void {
    clearInterval(this.keepAlive);
    if (!this.raw.writableEnded) this.raw.end();
  }

  private write(text: string): Promise<void> {
    if (this.raw.destroyed || this.raw.writableEnded) return Promise.resolve();
    if (this.raw.write(text)) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        this.raw.off('drain', done);
        this.raw.off('close', done);
        resolve();
      };
      this.raw.on('drain', done);
      this.raw.on('close', done);
    });
  }
}
