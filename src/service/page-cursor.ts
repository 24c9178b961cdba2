import { HangarError } from '../domain/errors.js';
import type { ServerSecret } from './secrets.js';
import { safeEqual } from './secrets.js';

/** A position in a sorted listing: the sort key's value, then the id that breaks ties. */
export type PagePosition = [key: string | number, id: string];

/**
 * Opaque, signed page cursors (the Paperspace-style `after`/`nextPage`): a position
 * bound to the team and the query that produced it. A cursor from another team or
 * query, or an edited one, is a 400.
 */
export class PageCursorCodec {
  constructor(
    private readonly secret: ServerSecret,
    /** Keeps cursors of one listing from being accepted by another. */
    private readonly purpose: string,
  ) {}

  /** Encode a position for this team and query scope. */
  encode(pos: PagePosition, teamId: string, scope: string): string {
    const body = Buffer.from(JSON.stringify(pos)).toString('base64url');
    return `${body}.${this.secret.sign(this.purpose, `${teamId}\0${scope}\0${body}`)}`;
  }

  /** Decode and verify, or throw INVALID_NEXT_TOKEN naming `param`. */
  decode(token: string, teamId: string, scope: string, param = 'after'): PagePosition {
    const invalid = new HangarError(
      'INVALID_NEXT_TOKEN',
      `${param} is not valid for this request: pass back exactly the nextPage of the previous page, with the same filters and order.`,
      { field: param },
    );
    const dot = token.indexOf('.');
    if (dot <= 0 || token.length > 1024) throw invalid;
    const body = token.slice(0, dot);
    if (!safeEqual(token.slice(dot + 1), this.secret.sign(this.purpose, `${teamId}\0${scope}\0${body}`))) throw invalid;
    try {
      const parsed: unknown = JSON.parse(Buffer.from(body, 'base64url').toString('utf8'));
      if (Array.isArray(parsed) && parsed.length === 2 && (typeof parsed[0] === 'string' || typeof parsed[0] === 'number') && typeof parsed[1] === 'string') {
        return [parsed[0], parsed[1]];
      }
    } catch {
      // fall through
    }
    throw invalid;
  }
}

/** Compare two positions: by key, then by id (numbers numerically, strings by code unit). */
export function comparePositions(a: PagePosition, b: PagePosition): number {
  const [ka, ia] = a;
  const [kb, ib] = b;
  if (ka !== kb) {
    if (typeof ka === 'number' && typeof kb === 'number') return ka - kb;
    return String(ka) < String(kb) ? -1 : 1;
  }
  return ia === ib ? 0 : ia < ib ? -1 : 1;
}
