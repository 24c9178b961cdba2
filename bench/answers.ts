import type { TimedResponse } from './http-client.js';

/** The fields of a machine or error body the benchmark looks at. */
export interface AnswerBody {
  id?: string;
  status?: string;
  code?: string;
  message?: string;
  details?: { machine_id?: string };
}

/** The answer's JSON body, or null when there is none or it is not JSON. */
export function bodyOf(res: TimedResponse | Error): AnswerBody | null {
  if (res instanceof Error) return null;
  try {
    return JSON.parse(res.text) as AnswerBody;
  } catch {
    return null;
  }
}

/** "<http status> <error code>: <message>" of an answer, or why there was none. */
export function failureOf(res: TimedResponse | Error): string {
  if (res instanceof Error) return `no answer: ${res.message}`;
  const body = bodyOf(res);
  if (!body) return `${res.status}: ${res.text.slice(0, 160)}`;
  return `${res.status} ${body.code ?? `status ${body.status}`}: ${body.message ?? ''}`;
}

/** The id of the machine an answer names: a created machine, or one a failed create left in error. */
export function machineIdOf(res: TimedResponse | Error): string | undefined {
  const body = bodyOf(res);
  return body?.id ?? body?.details?.machine_id;
}
