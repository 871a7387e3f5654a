import { fileURLToPath } from 'node:url';

/**
 * The absolute path of this installation's dist/cli.js. Resolved from this module's own URL, which must sit
 * directly in dist/ in both layouts the package runs from: tsc's output (dist/paths.js) and the bin bundle of
 * scripts/build-bin.mjs (dist/cli.js and its dist/cli-*.js chunks). A module deeper in dist/ cannot resolve
 * it itself: in the bundle it no longer has a file of its own. Keep this file at the top of src/.
 */
export const CLI_PATH: string = fileURLToPath(new URL('./cli.js', import.meta.url));
