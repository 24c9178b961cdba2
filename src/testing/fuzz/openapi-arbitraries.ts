/**
 * fast-check arbitraries read from Hangar's OpenAPI document: for each operation, requests
 * whose parameters and bodies are mostly valid-shaped, with wrong types, boundary values,
 * unknown fields, huge strings and odd unicode mixed in at every level.
 */
import fc from 'fast-check';

/** The part of a JSON Schema (OpenAPI 3.1 flavour) the generator reads. */
export interface JsonSchema {
  $ref?: string;
  type?: string | string[];
  enum?: unknown[];
  const?: unknown;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  allOf?: JsonSchema[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: boolean | JsonSchema;
  items?: JsonSchema;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  maxItems?: number;
  pattern?: string;
}

/** One operation of the document, as the fuzzer needs it. */
export interface Operation {
  method: string;
  /** The templated path, e.g. `/v1/machines/{id}`. */
  path: string;
  parameters: { name: string; in: 'path' | 'query' | 'header'; required: boolean; schema: JsonSchema }[];
  /** Media type and schema of the body, when the operation takes one. */
  body: { mediaType: string; schema: JsonSchema } | null;
  /** The shape of its 4xx bodies: Hangar's catalogue `{code, message}` (default), or E2B's `{code: <status>, message}`. */
  errorShape?: 'hangar' | 'e2b';
}

/** The OpenAPI document, as far as the fuzzer reads it. */
export interface OpenApiDocument {
  paths: Record<string, Record<string, { parameters?: Operation['parameters']; requestBody?: { content: Record<string, { schema: JsonSchema }> } }>>;
  components?: { schemas?: Record<string, JsonSchema> };
}

const METHODS = ['get', 'post', 'put', 'patch', 'delete'];

/** Every operation of the document, in document order. */
export function operationsOf(doc: OpenApiDocument): Operation[] {
  const ops: Operation[] = [];
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      if (!METHODS.includes(method)) continue;
      const content = op.requestBody?.content ?? {};
      const mediaType = Object.keys(content)[0];
      ops.push({
        method: method.toUpperCase(),
        path,
        parameters: op.parameters ?? [],
        body: mediaType === undefined ? null : { mediaType, schema: content[mediaType]?.schema ?? {} },
      });
    }
  }
  return ops;
}

/** Strings that have broken parsers elsewhere: control characters, surrogates, RTL marks, path tricks. */
const ODD_STRINGS = [
  '', ' ', '\u0000', '\u0000abc', '\ud800', '\udfff\ud800', '\u202e\u0041\u0301', '\ufeff', '😀'.repeat(40), '../../etc/passwd', '/..',
  '%00', '%', '%zz', '\\', '"', "'; DROP TABLE machines; --", '${7*7}', '\r\n\r\nX: y', 'null', 'undefined', 'NaN', '-1', '1e309',
  '__proto__', 'constructor', '{}', '[]', 'mch_', 'mch_00000000000000000000', 'base\n', '\t', 'a'.repeat(300),
];

/** A value of a wrong or hostile kind, whatever the schema says. */
export function hostileValue(): fc.Arbitrary<unknown> {
  return fc.oneof(
    fc.constantFrom<unknown>(null, true, false, 0, -1, 1.5, -0, 2 ** 53 + 1, 1e308, -1e308, [], {}, [null], { '': null }),
    fc.constantFrom(...ODD_STRINGS),
    fc.string({ unit: 'binary', maxLength: 40 }),
    // Huge strings: past every maxLength the schemas set, still under the 1 MiB body limit.
    fc.integer({ min: 5_000, max: 200_000 }).map((n) => 'x'.repeat(n)),
    fc.jsonValue({ maxDepth: 2 }),
  );
}

/** Schema-driven values; `bad` is the weight (out of 10) of a hostile value at each node. */
export class ValueGenerator {
  constructor(
    private readonly schemas: Record<string, JsonSchema>,
    private readonly bad: number,
  ) {}

  /** Values for `schema`: valid-shaped most of the time, hostile now and then. */
  value(schema: JsonSchema, depth = 0): fc.Arbitrary<unknown> {
    const good = this.valid(schema, depth);
    if (this.bad <= 0) return good;
    return fc.oneof({ arbitrary: good, weight: 10 - this.bad }, { arbitrary: this.invalid(schema), weight: this.bad });
  }

  private resolve(schema: JsonSchema): JsonSchema {
    let s = schema;
    for (let i = 0; s.$ref !== undefined && i < 10; i++) s = this.schemas[s.$ref.replace('#/components/schemas/', '')] ?? {};
    return s;
  }

  /** A value the schema (as far as it is read here) accepts. */
  valid(raw: JsonSchema, depth = 0): fc.Arbitrary<unknown> {
    const schema = this.resolve(raw);
    if (schema.const !== undefined) return fc.constant(schema.const);
    if (schema.enum) return fc.constantFrom(...schema.enum);
    const alts = schema.anyOf ?? schema.oneOf;
    if (alts?.length) return fc.oneof(...alts.map((a) => this.value(a, depth + 1)));
    if (schema.allOf?.length) return this.valid(schema.allOf[0] ?? {}, depth);
    const type = Array.isArray(schema.type) ? schema.type[0] : schema.type;
    switch (type) {
      case 'string':
        return this.stringOf(schema);
      case 'integer':
        return this.numberOf(schema, true);
      case 'number':
        return this.numberOf(schema, false);
      case 'boolean':
        return fc.boolean();
      case 'null':
        return fc.constant(null);
      case 'array':
        return depth > 4
          ? fc.constant([])
          : fc.array(this.value(schema.items ?? {}, depth + 1), { maxLength: Math.min(schema.maxItems ?? 4, 4) });
      case 'object':
        return this.objectOf(schema, depth);
      default:
        return schema.properties ? this.objectOf(schema, depth) : fc.jsonValue({ maxDepth: 2 });
    }
  }

  /** A value just outside the schema: wrong type, boundary + 1, too long, or anything hostile. */
  private invalid(raw: JsonSchema): fc.Arbitrary<unknown> {
    const schema = this.resolve(raw);
    const near: fc.Arbitrary<unknown>[] = [];
    if (schema.minimum !== undefined) near.push(fc.constantFrom(schema.minimum - 1, schema.minimum - 0.5, String(schema.minimum)));
    if (schema.maximum !== undefined) near.push(fc.constantFrom(schema.maximum + 1, schema.maximum * 1000 + 7));
    if (schema.maxLength !== undefined) near.push(fc.constant('y'.repeat(schema.maxLength + 1)));
    if (schema.minLength !== undefined && schema.minLength > 0) near.push(fc.constant(''));
    if (schema.enum) near.push(fc.constantFrom(...schema.enum.map((e) => `${String(e)}X`), ...schema.enum.map((e) => String(e).toUpperCase())));
    return near.length ? fc.oneof(hostileValue(), ...near) : hostileValue();
  }

  private stringOf(schema: JsonSchema): fc.Arbitrary<string> {
    const min = schema.minLength ?? 0;
    const max = Math.min(schema.maxLength ?? 24, 24);
    if (schema.pattern !== undefined) {
      let re: RegExp | null = null;
      try {
        re = new RegExp(schema.pattern, 'u');
      } catch {
        re = null;
      }
      if (re !== null) {
        const r = re;
        // stringMatching knows most patterns; a hand-made fallback keeps paths and names plausible.
        return fc.oneof(fc.stringMatching(r).filter((s) => s.length <= 200), fc.constantFrom('/tmp', '/', 'abc', 'upl_0123456789abcdef'));
      }
    }
    return fc.oneof(
      { arbitrary: fc.string({ minLength: min, maxLength: Math.max(min, max) }), weight: 4 },
      { arbitrary: fc.constantFrom('/', '/tmp', '/etc/hostname', 'base', 'a', 'x'.repeat(Math.max(min, 1))), weight: 2 },
      { arbitrary: fc.string({ unit: 'grapheme', minLength: min, maxLength: Math.max(min, max) }), weight: 1 },
    );
  }

  private numberOf(schema: JsonSchema, integer: boolean): fc.Arbitrary<number> {
    const min = schema.minimum ?? -1_000_000;
    const max = schema.maximum ?? 1_000_000;
    const inner = integer
      ? fc.integer({ min: Math.ceil(Math.max(min, Number.MIN_SAFE_INTEGER)), max: Math.floor(Math.min(max, Number.MAX_SAFE_INTEGER)) })
      : fc.double({ min, max, noNaN: true });
    // Boundaries are where off-by-one bugs live.
    return fc.oneof({ arbitrary: inner, weight: 3 }, { arbitrary: fc.constantFrom(min, max), weight: 1 });
  }

  private objectOf(schema: JsonSchema, depth: number): fc.Arbitrary<unknown> {
    if (depth > 4) return fc.constant({});
    const props = schema.properties ?? {};
    const model: Record<string, fc.Arbitrary<unknown>> = {};
    for (const [k, v] of Object.entries(props)) model[k] = this.value(v, depth + 1);
    const known = fc.record(model, { requiredKeys: (schema.required ?? []).filter((k) => k in props) });
    const extra =
      typeof schema.additionalProperties === 'object'
        ? fc.dictionary(fc.string({ maxLength: 12 }), this.value(schema.additionalProperties, depth + 1), { maxKeys: 3 })
        : fc.constant({});
    // Unknown fields now and then: a strict schema must refuse them, a loose one must ignore them.
    const unknown =
      this.bad > 0
        ? fc.oneof({ arbitrary: fc.constant(null), weight: 10 - this.bad }, { arbitrary: fc.dictionary(fc.constantFrom('zz_unknown', 'Config', 'id', '__proto__x'), hostileValue(), { minKeys: 1, maxKeys: 2 }), weight: this.bad })
        : fc.constant(null);
    return fc.tuple(known, extra, unknown).map(([k, e, u]) => ({ ...e, ...(u ?? {}), ...(k as object) }));
  }
}
