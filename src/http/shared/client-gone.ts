import type { FastifyReply } from 'fastify';

/** An AbortSignal that fires when the client goes away before the answer is complete. */
export function clientGone(reply: FastifyReply): AbortSignal {
  const ac = new AbortController();
  reply.raw.once('close', () => {
    // 'close' also follows a complete answer: only an unfinished one means the client left.
    if (!reply.raw.writableFinished) ac.abort();
  });
  return ac.signal;
}
