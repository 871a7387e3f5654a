/**
 * The output schemas as served: zod's JSON Schema made cheaper for a client to compile (an SDK client compiles a
 * validator per output schema before listTools() returns) without changing what it accepts. server.ts applies it
 * once per schema; src/precompute-schemas.ts applies it at build time. Pure: it imports nothing.
 */
export type JsonSchema = Record<string, unknown>;

/** Keywords that constrain only one JSON type (or only annotate), so `type: [T, 'null']` lets null through them unchanged. */
const TYPE_BOUND = new Set([
  'type',
  'properties',
  'required',
  'additionalProperties',
  'propertyNames',
  'items',
  'minItems',
  'maxItems',
  'minLength',
  'maxLength',
  'pattern',
  'format',
  'enum',
  'description',
  'title',
]);
const SAFE_INT = { type: 'integer', minimum: Number.MIN_SAFE_INTEGER, maximum: Number.MAX_SAFE_INTEGER };
const isObj = (x: unknown): x is JsonSchema => typeof x === 'object' && x !== null && !Array.isArray(x);
const isNull = (x: unknown) => isObj(x) && Object.keys(x).length === 1 && x.type === 'null';
const sameJson = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/**
 * An output schema in the forms a client compiles cheapest, same constraints: an SDK client compiles an Ajv
 * validator for every output schema on tools/list (≈ 2× the time for zod's spelling), and what it costs is
 * mostly branching. So `anyOf: [X, {type: 'null'}]` becomes X with `'null'` added to its `type` (through a
 * `<Name>OrNull` definition for a `$ref`), and the id union `integer | string` becomes `type: ['integer',
 * 'string']` (zod's ±2^53 bounds on the integer dropped: JSON numbers past them cannot come from this server).
 * Only branches whose keywords all apply to one type are merged; anything else is left as zod wrote it.
 */
export function compactOutputSchema(doc: JsonSchema): JsonSchema {
  const defs = isObj(doc.$defs) ? { ...doc.$defs } : {};
  const defOf = (ref: unknown) => (typeof ref === 'string' && ref.startsWith('#/$defs/') ? ref.slice('#/$defs/'.length) : undefined);
  const orNull = (x: JsonSchema): JsonSchema | undefined => {
    if (typeof x.type !== 'string' || x.type === 'null' || !Object.keys(x).every((k) => TYPE_BOUND.has(k))) return undefined;
    return { ...x, type: [x.type, 'null'], ...(Array.isArray(x.enum) ? { enum: [...(x.enum as unknown[]), null] } : {}) };
  };
  const done = new Set<string>();
  // A definition is compacted once, before anything is made from it.
  const defNode = (name: string): unknown => {
    if (!done.has(name)) {
      done.add(name);
      defs[name] = walk(defs[name]);
    }
    return defs[name];
  };
  const walk = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(walk);
    if (!isObj(node)) return node;
    const out: JsonSchema = {};
    for (const [k, v] of Object.entries(node)) {
      // `properties` maps names to schemas: the map itself is no schema, whatever its keys are called.
      if (k === 'properties' && isObj(v)) out[k] = Object.fromEntries(Object.entries(v).map(([n, x]) => [n, walk(x)]));
      else out[k] = k === '$defs' ? v : walk(v);
    }
    const branches = out.anyOf;
    if (!Array.isArray(branches) || branches.length !== 2 || out.type !== undefined) return out;
    const { anyOf: _, ...rest } = out;
    const [a, b] = branches as unknown[];
    if (sameJson(a, SAFE_INT) && sameJson(b, { type: 'string' })) return { type: ['integer', 'string'], ...rest };
    const other = isNull(b) ? a : isNull(a) ? b : undefined;
    if (!isObj(other)) return out;
    const name = defOf(other.$ref);
    if (name !== undefined && Object.keys(other).length === 1) {
      const target = defNode(name);
      const merged = isObj(target) ? orNull(target) : undefined;
      const key = `${name}OrNull`;
      if (!merged || (key in defs && !sameJson(defs[key], merged))) return out;
      defs[key] = merged;
      done.add(key);
      return { $ref: `#/$defs/${key}`, ...rest };
    }
    const merged = orNull(other);
    return merged ? { ...merged, ...rest } : out;
  };
  for (const name of Object.keys(defs)) defNode(name);
  const root = walk({ ...doc, $defs: undefined }) as JsonSchema;
  // Keep only the definitions still referenced from the root (an object used only as nullable lives on as <Name>OrNull).
  const used = new Set<string>();
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) return node.forEach(visit);
    if (!isObj(node)) return;
    const name = defOf(node.$ref);
    if (name !== undefined && !used.has(name)) {
      used.add(name);
      visit(defs[name]);
    }
    for (const [k, v] of Object.entries(node)) if (k !== '$defs') visit(v);
  };
  visit(root);
  delete root.$defs;
  const kept = Object.keys(defs).filter((n) => used.has(n));
  return kept.length ? { ...root, $defs: Object.fromEntries(kept.map((n) => [n, defs[n]])) } : root;
}
