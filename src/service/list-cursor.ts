import { HangarError } from '../domain/errors.js';
import type { ListCursor } from '../store/store.js';
import type { ServerSecret } from './secrets.js';
import { safeEqual } from './secrets.js';

/**
 * `next_token` is an opaque keyset cursor: the last position returned, bound to the
 * team and the query that produced it, and signed. A token from another team, another
 * query or with an edited position fails verification.
 */
export class CursorCodec {
  constructor(private readonly secret: ServerSecret) {}

  /** Encode a position for this team and query scope. */
  encode(pos: ListCursor, teamId: string, scope: string): string {
    const body = Buffer.from(JSON.stringify([pos.createdAt, pos.id])).toString('base64url');
    return `${body}.${this.secret.sign('cursor', `${teamId}\0${scope}\0${body}`)}`;
  }

  /** Decode and verify, or throw INVALID_NEXT_TOKEN. */
  decode(token: string, teamId: string, scope: string): ListCursor {
    const invalid = new HangarError(
      'INVALID_NEXT_TOKEN',
      'next_token is not valid for this request: pass back exactly the next_token of the previous page, with the same filters.',
    );
    const dot = token.indexOf('.');
    if (dot <= 0 || token.length > 512) throw invalid;
    const body = token.slice(0, dot);
    const mac = token.slice(dot + 1);
    if (!safeEqual(mac, this.secret.sign('cursor', `${teamId}\0${scope}\0${body}`))) throw invalid;
    try {
      const parsed: unknown = JSON.parse(Buffer.from(body, 'base64url').toString('utf8'));
      if (Array.isArray(parsed) && typeof parsed[0] === 'number' && typeof parsed[1] === 'string') {
        return { createdAt: parsed[0], id: parsed[1] };
      }
    } catch {
      // fall through
    }
    throw invalid;
  }
}
