import { z } from 'zod';
import { validationError, type FieldProblem, type HangarError } from '../domain/errors.js';

type Issue = z.core.$ZodIssue;

const TYPE_NAMES: Record<string, string> = {
  int: 'an integer',
  number: 'a number',
  string: 'a string',
  boolean: 'true or false',
  object: 'a JSON object',
  record: 'a JSON object',
  array: 'an array',
};

/** The keys a strict object accepts at `path`, for "unknown field" messages. */
function allowedKeysAt(schema: z.ZodType, path: PropertyKey[]): string[] {
  let s: unknown = schema;
  for (const key of path) {
    s = unwrap(s);
    const shape = (s as { shape?: Record<string, unknown> }).shape;
    if (!shape || typeof key !== 'string' || !(key in shape)) return [];
    s = shape[key];
  }
  const shape = (unwrap(s) as { shape?: Record<string, unknown> }).shape;
  return shape ? Object.keys(shape) : [];
}

function unwrap(s: unknown): unknown {
  let cur = s as { unwrap?: () => unknown; def?: { innerType?: unknown } };
  for (let i = 0; i < 8; i++) {
    if (cur && typeof cur.unwrap === 'function') cur = cur.unwrap() as typeof cur;
    else if (cur?.def?.innerType) cur = cur.def.innerType as typeof cur;
    else break;
  }
  return cur;
}

function describeIssue(issue: Issue, schema: z.ZodType, prefix: string): FieldProblem[] {
  const field = [prefix, ...issue.path.map(String)].filter(Boolean).join('.');
  switch (issue.code) {
    case 'unrecognized_keys': {
      const allowed = allowedKeysAt(schema, issue.path);
      return issue.keys.map((k) => ({
        field: [field, k].filter(Boolean).join('.'),
        message: `unknown field; remove it${allowed.length ? ` (accepted: ${allowed.join(', ')})` : ''}`,
      }));
    }
    case 'invalid_type': {
      if ((issue as { input?: unknown }).input === undefined) return [{ field, message: 'is required' }];
      return [{ field, message: `must be ${TYPE_NAMES[issue.expected] ?? issue.expected}` }];
    }
    case 'too_small':
      if (issue.origin === 'string') return [{ field, message: `must be at least ${issue.minimum} characters long` }];
      if (issue.origin === 'array') return [{ field, message: `must have at least ${issue.minimum} items` }];
      return [{ field, message: `must be at least ${issue.minimum}` }];
    case 'too_big':
      if (issue.origin === 'string') return [{ field, message: `must be at most ${issue.maximum} characters long` }];
      if (issue.origin === 'array') return [{ field, message: `must have at most ${issue.maximum} items` }];
      return [{ field, message: `must be at most ${issue.maximum}` }];
    case 'invalid_value':
      return [{ field, message: `must be one of: ${issue.values.map((v) => String(v)).join(', ')}` }];
    case 'invalid_format':
      return [{ field, message: issue.message.startsWith('Invalid') ? `has an invalid format (${issue.format})` : issue.message }];
    default:
      return [{ field, message: issue.message }];
  }
}

/** Parse `value` with `schema`, or throw VALIDATION_FAILED naming each bad field. */
export function parseOrThrow<S extends z.ZodType>(schema: S, value: unknown, prefix = ''): z.output<S> {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  throw toValidationError(r.error, schema, prefix);
}

/** Turn a zod error into the catalogue's VALIDATION_FAILED. */
export function toValidationError(err: z.ZodError, schema: z.ZodType, prefix = ''): HangarError {
  return validationError(err.issues.flatMap((i) => describeIssue(i, schema, prefix)));
}

/** An integer schema with plain-language bounds. */
export function intBetween(min: number, max: number): z.ZodNumber {
  return z.number().int().min(min).max(max);
}
