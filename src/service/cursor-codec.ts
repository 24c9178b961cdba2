import { HangarError } from '../domain/errors.js';
import type { ListCursor } from '../store/store.js';
import type { ServerSecret } from './secrets.js';
import { safeEqual } from './secrets.js';

/** A position in a sorted listing: the sort key's value, then the id that breaks ties. */
export type PagePosition = [key: string | number, id: string];

/**
 * What sets one listing's cursors apart. The token itself is the same everywhere:
 * `<base64url of the JSON [key, id]>.<signature over team, scope and body>`.
 */
export interface CursorFormat<P> {
  /** Signing purpose: keeps cursors of one listing from being accepted by another. */
  purpose: string;
  /** Longer tokens are refused before anything is parsed. */
  maxLength: number;
  /** The request parameter the token comes back in, named by the error. */
  param: string;
  /** The 400 for a token that fails, naming the parameter it came in. */
  invalid(param: string): HangarError;
  /** The `[key, id]` a position is signed as. */
  toTuple(pos: P): PagePosition;
  /** The position of a verified `[key, id]`, or null if it has the wrong shape for this listing. */
  fromTuple(tuple: PagePosition): P | null;
}

/** The native machine list's `next_token`: a (created_at, id) keyset position. */
export const NEXT_TOKEN_FORMAT: CursorFormat<ListCursor> = {
  // Tokens already handed out were signed for 'cursor': the name stays.
  purpose: 'cursor',
  maxLength: 512,
  param: 'next_token',
  invalid: () =>
    new HangarError(
      'INVALID_NEXT_TOKEN',
      'next_token is not valid for this request: pass back exactly the next_token of the previous page, with the same filters.',
    ),
  toTuple: (pos) => [pos.createdAt, pos.id],
  fromTuple: ([key, id]) => (typeof key === 'number' ? { createdAt: key, id } : null),
};

/** Paperspace-style page cursors (`after`, handed out as `nextPage`), signed for `purpose`. */
export function pageCursorFormat(purpose: string): CursorFormat<PagePosition> {
  return {
    purpose,
    maxLength: 1024,
    param: 'after',
    invalid: (param) =>
      new HangarError(
        'INVALID_NEXT_TOKEN',
        `${param} is not valid for this request: pass back exactly the nextPage of the previous page, with the same filters and order.`,
        { field: param },
      ),
    toTuple: (pos) => pos,
    fromTuple: (tuple) => tuple,
  };
}

/**
 * Opaque, signed list cursors: the last position a page returned, bound to the team and
 * the query (its scope) that produced it. A cursor from another team, another query or
 * another listing, or an edited one, is a 400 INVALID_NEXT_TOKEN.
 */
export class CursorCodec<P = PagePosition> {
  constructor(
    private readonly secret: ServerSecret,
    private readonly format: CursorFormat<P>,
  ) {}

  private sign(teamId: string, scope: string, body: string): string {
    return this.secret.sign(this.format.purpose, `${teamId}\0${scope}\0${body}`);
  }

  /** Encode a position for this team and query scope. */
  encode(pos: P, teamId: string, scope: string): string {
    const body = Buffer.from(JSON.stringify(this.format.toTuple(pos))).toString('base64url');
    return `${body}.${this.sign(teamId, scope, body)}`;
  }

  /** Decode and verify, or throw INVALID_NEXT_TOKEN naming `param`. */
  decode(token: string, teamId: string, scope: string, param = this.format.param): P {
    const dot = token.indexOf('.');
    if (dot <= 0 || token.length > this.format.maxLength) throw this.invalid(param);
    const body = token.slice(0, dot);
    if (!safeEqual(token.slice(dot + 1), this.sign(teamId, scope, body))) throw this.invalid(param);
    let parsed: unknown;
    try {
      parsed = JSON.parse(Buffer.from(body, 'base64url').toString('utf8'));
    } catch {
      throw this.invalid(param);
    }
    // Only this server signs, so a bad shape means a bug or a leaked secret: refused all the same.
    if (Array.isArray(parsed) && parsed.length === 2 && (typeof parsed[0] === 'string' || typeof parsed[0] === 'number') && typeof parsed[1] === 'string') {
      const pos = this.format.fromTuple([parsed[0], parsed[1]]);
      if (pos !== null) return pos;
    }
    throw this.invalid(param);
  }

  /** The error a refused cursor gets, for checks made after decoding. */
  invalid(param = this.format.param): HangarError {
    return this.format.invalid(param);
  }
}

/** Compare two positions: by key, then by id (numbers numerically, strings by UTF-16 code unit). */
export function comparePositions(a: PagePosition, b: PagePosition): number {
  const [ka, ia] = a;
  const [kb, ib] = b;
  if (ka !== kb) {
    if (typeof ka === 'number' && typeof kb === 'number') return ka - kb;
    return String(ka) < String(kb) ? -1 : 1;
  }
  return ia === ib ? 0 : ia < ib ? -1 : 1;
}
