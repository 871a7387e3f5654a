/** Moved to src/domain/errors.ts (the error type is the domain's); this re-export goes once every importer points there. */
export * from '../domain/errors.js';
