/**
 * The JSON Schemas of every tool as a single-connection server lists them, keyed as server.ts looks them up
 * (`jsonSchemasToPrecompute`). Empty here, so tsc's output converts each zod schema at run time; the bin bundle
 * gets them filled in by scripts/build-bin.mjs, converted by zod in the same build, which saves the first
 * tools/list converting them (test/unit/precomputed-schemas.test.ts holds the bundle's copy equal to zod's).
 */
export const PRECOMPUTED_JSON_SCHEMAS: Readonly<Record<string, Record<string, unknown> | undefined>> = {};
