#!/usr/bin/env node
/**
 * The crm-mcp binary (package.json "bin": dist/cli.js). Everything lives in entry/: cli.ts picks the
 * sub-command, serve.ts starts stdio or Streamable HTTP. This file stays so the bin path never changes.
 */
import { run } from './entry/cli.js';

run(process.argv.slice(2));
