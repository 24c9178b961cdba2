/** The SDK's error classes: every failure of a call is one of these (or the caller's own abort reason). */

/** An answer of the server that is not a success: its stable `code`, HTTP status and sentence. */
export class HangarApiError extends Error {
  override name = 'HangarApiError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: Record<string, unknown> | undefined,
  ) {
    super(message);
  }
}

/** The server could not be reached (after the retries an idempotent call gets). */
export class HangarConnectionError extends Error {
  override name = 'HangarConnectionError';
}

/** The call took longer than its timeout. */
export class HangarTimeoutError extends Error {
  override name = 'HangarTimeoutError';
}

/** Build the typed error for a JSON error body (or anything else) the server answered with. */
export function apiErrorFrom(status: number, text: string, statusText = ''): HangarApiError {
  let parsed: { code?: string; message?: string; details?: Record<string, unknown> } = {};
  try {
    parsed = JSON.parse(text) as typeof parsed;
  } catch {
    parsed = {};
  }
  return new HangarApiError(status, parsed.code ?? `HTTP_${status}`, parsed.message ?? (text || statusText), parsed.details);
}
