#!/usr/bin/env node
/**
 * Builds the Claude Desktop extension (MCP Bundle) `crm-mcp.mcpb` from the built `dist/`:
 *
 *   staging/manifest.json          generated: version from package.json, tools from the tool registry
 *   staging/server/dist/…          the same files `npm pack` ships
 *   staging/server/node_modules/…  production dependencies from package-lock.json (`npm ci --omit=dev`)
 *
 * then `mcpb validate` and `mcpb pack`. Run it with `npm run bundle` (builds first).
 *
 *   node scripts/bundle.mjs [--out FILE] [--staging DIR] [--manifest-only]
 *
 * `--manifest-only` writes just staging/manifest.json (what the test validates, in a second).
 */
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

const { values } = parseArgs({
  options: {
    out: { type: 'string', default: join(ROOT, 'crm-mcp.mcpb') },
    staging: { type: 'string', default: join(ROOT, '.mcpb-staging') },
    'manifest-only': { type: 'boolean', default: false },
  },
});
const staging = resolve(values.staging);
const out = resolve(values.out);

const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
if (!existsSync(join(ROOT, 'dist', 'cli.js'))) fail('dist/cli.js is missing: run `npm run build` first (or `npm run bundle`).');

const ENTRY = 'server/dist/cli.js';

/** Tool list for the manifest, from the same registry the server and the README table use. */
async function manifestTools() {
  const { ALL_TOOLS } = await import(pathToFileURL(join(ROOT, 'dist', 'crms', 'registry.js')).href);
  const { firstSentence } = await import(pathToFileURL(join(ROOT, 'dist', 'docs.js')).href);
  const needs = { create: 'needs "Allow creating records"', update: 'needs writes and safe mode off', delete: 'needs writes, safe mode off and deletes' };
  return ALL_TOOLS.map((t) => {
    const note = t.effectOf ? 'allowed methods follow the safety settings' : needs[t.effect];
    return { name: t.name, description: note ? `${firstSentence(t.description)} (${note})` : firstSentence(t.description) };
  });
}

async function buildManifest() {
  return {
    manifest_version: '0.3',
    name: pkg.name,
    display_name: 'CRM: Kommo / amoCRM and Bitrix24',
    version: pkg.version,
    description: pkg.description,
    long_description:
      'Search, read and (when you allow it) create leads, contacts, companies, notes and tasks in Kommo (amoCRM) and ' +
      'Bitrix24. Read-only by default: write tools are not even offered until you turn on "Allow creating records". ' +
      'Fill in the Kommo fields, the Bitrix24 webhook, or both; with both, tools take crm: "kommo" or "bitrix24".',
    author: typeof pkg.author === 'string' ? { name: pkg.author } : (pkg.author ?? { name: 'crm-mcp contributors' }),
    license: pkg.license,
    keywords: ['crm', 'kommo', 'amocrm', 'bitrix24', 'leads', 'sales'],
    server: {
      type: 'node',
      entry_point: ENTRY,
      mcp_config: {
        command: 'node',
        args: [`\${__dirname}/${ENTRY}`],
        // Empty values count as unset in the server's config loader, so optional fields may stay blank.
        env: {
          KOMMO_SUBDOMAIN: '${user_config.kommo_subdomain}',
          KOMMO_BASE_URL: '${user_config.kommo_base_url}',
          KOMMO_ACCESS_TOKEN: '${user_config.kommo_access_token}',
          BITRIX_WEBHOOK_BASE: '${user_config.bitrix_webhook_url}',
          CRM_ALLOW_WRITES: '${user_config.allow_writes}',
          CRM_SAFE_MODE: '${user_config.safe_mode}',
          CRM_ALLOW_DELETE: '${user_config.allow_delete}',
        },
      },
    },
    tools: await manifestTools(),
    tools_generated: false,
    user_config: {
      kommo_subdomain: {
        type: 'string',
        title: 'Kommo subdomain',
        description: 'The part before .kommo.com (e.g. "yourcompany"). Leave empty if you use only Bitrix24 or fill in the account address below.',
        required: false,
        default: '',
      },
      kommo_base_url: {
        type: 'string',
        title: 'Kommo / amoCRM account address',
        description: 'Instead of the subdomain, for amoCRM accounts: e.g. https://yourcompany.amocrm.ru',
        required: false,
        default: '',
      },
      kommo_access_token: {
        type: 'string',
        title: 'Kommo long-lived token',
        description: 'Kommo → Settings → Integrations → your private integration → Keys and scopes → long-lived token.',
        sensitive: true,
        required: false,
        default: '',
      },
      bitrix_webhook_url: {
        type: 'string',
        title: 'Bitrix24 inbound webhook URL',
        description:
          'https://yourportal.bitrix24.com/rest/1/xxxxxxxx/ (Developer resources → Other → Inbound webhook, scopes crm, user, task). The URL contains a secret.',
        sensitive: true,
        required: false,
        default: '',
      },
      allow_writes: {
        type: 'boolean',
        title: 'Allow creating records',
        description: 'Lets the agent create leads, contacts, notes and tasks. Off: read-only.',
        required: false,
        default: false,
      },
      safe_mode: {
        type: 'boolean',
        title: 'Safe mode (never change existing records)',
        description: 'On: writes may only create. Turn off to also allow updates (needs "Allow creating records").',
        required: false,
        default: true,
      },
      allow_delete: {
        type: 'boolean',
        title: 'Allow deletes',
        description: 'Allows deleting records (needs writes allowed and safe mode off).',
        required: false,
        default: false,
      },
    },
    compatibility: {
      platforms: ['darwin', 'win32', 'linux'],
      runtimes: { node: pkg.engines?.node ?? '>=20' },
    },
  };
}

function fail(message) {
  process.stderr.write(`bundle: ${message}\n`);
  process.exit(1);
}

function run(command, args, cwd) {
  const r = spawnSync(command, args, { cwd, stdio: 'inherit', shell: process.platform === 'win32' && command === 'npm' });
  if (r.status !== 0) fail(`${command} ${args.join(' ')} failed (exit ${r.status ?? r.signal})`);
}

/** The mcpb CLI from devDependencies, run with this Node (no .bin shims, so it works on Windows too). */
function mcpb(args) {
  const require = createRequire(import.meta.url);
  // package.json is not exported; the main entry sits in dist/, next to the bin's cli/cli.js.
  const cli = join(dirname(require.resolve('@anthropic-ai/mcpb')), 'cli', 'cli.js');
  run(process.execPath, [cli, ...args], ROOT);
}

/** The same selection as package.json `files`: no source maps, tests or dev scripts. */
function shipped(src) {
  const rel = relative(join(ROOT, 'dist'), src).split('\\').join('/');
  if (statSync(src).isDirectory()) return true;
  return !rel.endsWith('.map') && !rel.endsWith('.test.js') && rel !== 'docs.js';
}

rmSync(staging, { recursive: true, force: true });
mkdirSync(join(staging, 'server'), { recursive: true });
const manifest = await buildManifest();
// The form fields above are hand-picked, but each must agree with the env table (name, secret, type, default).
const { manifestEnvProblems } = await import(pathToFileURL(join(ROOT, 'dist', 'config', 'env-docs.js')).href);
const envProblems = manifestEnvProblems(manifest);
if (envProblems.length) fail(`the manifest's variables disagree with src/config/env-table.ts:\n  ${envProblems.join('\n  ')}`);
writeFileSync(join(staging, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
if (values['manifest-only']) {
  process.stdout.write(`${join(staging, 'manifest.json')}\n`);
  process.exit(0);
}

const server = join(staging, 'server');
cpSync(join(ROOT, 'dist'), join(server, 'dist'), { recursive: true, filter: shipped });
for (const f of ['README.md', 'LICENSE', 'package-lock.json']) if (existsSync(join(ROOT, f))) cpSync(join(ROOT, f), join(server, f));
// dist/version.js reads ../package.json; scripts are dropped (prepare would try to build), dependencies kept
// as they are so `npm ci` accepts the lockfile.
const { scripts: _scripts, ...runtimePkg } = pkg;
writeFileSync(join(server, 'package.json'), `${JSON.stringify(runtimePkg, null, 2)}\n`);
run('npm', ['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'], server);

mcpb(['validate', join(staging, 'manifest.json')]);
rmSync(out, { force: true });
mcpb(['pack', staging, out]);
process.stdout.write(`bundle: wrote ${relative(process.cwd(), out) || out}\n`);
