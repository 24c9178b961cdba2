import { z } from 'zod';
import { validationError, type FieldProblem, type HangarError } from '../domain/errors.js';

type Issue = z.core.$ZodIssue;

const TYPE_NAMES: Record<string, string> = {
  int: 'an integer (a whole number)',
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
    // An item of an array (`volumes.0`): the element's schema, which unwrapping an array already gives.
    if (typeof key === 'number') {
      s = (s as { element?: unknown }).element ?? s;
      continue;
    }
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

/** The schema at `path` inside `schema`, unwrapped, or undefined. */
function schemaAt(schema: z.ZodType, path: PropertyKey[]): unknown {
  let s: unknown = unwrap(schema);
  for (const key of path) {
    const shape = (s as { shape?: Record<string, unknown> }).shape;
    if (!shape || typeof key !== 'string' || !(key in shape)) return undefined;
    s = unwrap(shape[key]);
  }
  return s;
}

function describeIssue(issue: Issue, schema: z.ZodType, prefix: string): FieldProblem[] {
  const at = [prefix, ...issue.path.map(String)].filter(Boolean).join('.');
  const field = at || 'body';
  switch (issue.code) {
    case 'unrecognized_keys': {
      const allowed = allowedKeysAt(schema, issue.path);
      return issue.keys.map((k) => ({
        field: [at, k].filter(Boolean).join('.'),
        message: `unknown field; remove it${allowed.length ? ` (accepted: ${allowed.join(', ')})` : ''}`,
      }));
    }
    case 'invalid_type': {
      const input = (issue as { input?: unknown }).input;
      if (input === undefined) return [{ field, message: 'is required' }];
      if (prefix === 'query' && Array.isArray(input)) {
        return [{ field, message: 'is given more than once; pass it once, with several values separated by commas' }];
      }
      const expected = issue.expected === 'number' && (schemaAt(schema, issue.path) as { isInt?: boolean } | undefined)?.isInt ? 'int' : issue.expected;
      return [{ field, message: `must be ${TYPE_NAMES[expected] ?? expected}` }];
    }
    case 'too_small':
      if (issue.origin === 'string') return [{ field, message: `must be at least ${issue.minimum} characters long` }];
      if (issue.origin === 'array') return [{ field, message: `must have at least ${issue.minimum} items` }];
      return [{ field, message: `must be at least ${issue.minimum}` }];
    case 'too_big':
      if (issue.origin === 'string') return [{ field, message: `must be at most ${issue.maximum} characters long` }];
      if (issue.origin === 'array') return [{ field, message: `must have at most ${issue.maximum} items` }];
      return [{ field, message: `must be at most ${issue.maximum}` }];
    case 'invalid_key': {
      const inner = issue.issues[0];
      return [{ field, message: `is not an accepted key: ${inner?.message ?? 'invalid key'}` }];
    }
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
  // reportInput: tells a missing value (input undefined) from a wrong one.
  const r = schema.safeParse(value, { reportInput: true });
  if (r.success) return r.data;
  throw toValidationError(r.error, schema, prefix);
}

/** Turn a zod error into the catalogue's VALIDATION_FAILED. */
export function toValidationError(err: z.ZodError, schema: z.ZodType, prefix = ''): HangarError {
  // One problem per field; int() adds a safe-integer bound that would hide the real one.
  const issues = err.issues.filter(
    (i) => !((i.code === 'too_big' && i.maximum === Number.MAX_SAFE_INTEGER) || (i.code === 'too_small' && i.minimum === Number.MIN_SAFE_INTEGER)) ||
      err.issues.filter((j) => j.path.join('.') === i.path.join('.')).length === 1,
  );
  const seen = new Set<string>();
  const problems = issues.flatMap((i) => describeIssue(i, schema, prefix)).filter((p) => !seen.has(p.field) && seen.add(p.field));
  return validationError(problems);
}

/** An integer schema with plain-language bounds. */
export function intBetween(min: number, max: number): z.ZodNumber {
  return z.number().int().min(min).max(max);
}
