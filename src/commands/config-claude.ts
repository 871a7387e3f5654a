/**
 * `crm-mcp config claude`: prints the Claude Desktop `mcpServers` entry for the current setup (the variables
 * set in this environment, or `--config FILE`). Credentials become placeholders such as
 * "<your KOMMO_ACCESS_TOKEN>" unless `--with-secrets`. With `--sandbox` the connections are the emulators,
 * and the entry still carries the safety and process-wide settings. The JSON goes to stdout (pipe it into a
 * file or paste it); notes go to stderr so the output stays valid JSON.
 */
import { existsSync, realpathSync } from 'node:fs';
import { resolve, sep } from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from '../config/config.js';
import { CLI_PATH } from '../paths.js';
import { VERSION } from '../version.js';
import { ENV_TABLE, V, appliesWithConfigFile, namesOf, type EnvVar } from '../config/env-table.js';
import { SECRET_VARS, learntSettings, maskWebhook, out, type Env } from './common.js';
import { sandboxStandIns } from './sandbox.js';

/**
 * What the entry carries: every variable (and alias) of the env table the server reads, in the table's order;
 * not the internal ones, nor those only `crm-mcp auth` reads. One-time codes are left out with a note.
 */
const PRINTED = ENV_TABLE.filter((v) => !v.internal && v.readBy === 'server' && !v.oneTime);

/**
 * The sandbox keeps its store and audit log in memory unless CRM_MCP_STORE or CRM_MCP_AUDIT_LOG names a
 * place, so the data directory is never read there.
 */
const UNREAD_BY_SANDBOX: ReadonlySet<string> = new Set([V.CRM_MCP_HOME.name]);

/** One-time codes are exchanged once and then useless: never copied into a long-lived client config. */
const SKIPPED = ENV_TABLE.filter((v) => v.oneTime && !v.internal).flatMap(namesOf);

const USAGE = `Usage: crm-mcp config claude [--with-secrets] [--name NAME] [--npx [--package FILE]] [--config FILE] [--sandbox]

Prints the Claude Desktop "mcpServers" entry for the current setup. Credentials are placeholders
("<your KOMMO_ACCESS_TOKEN>") unless --with-secrets. By default the entry runs this installation's node and
cli.js, which works from a clone (after npm install) and from an installed tarball. --package FILE runs a
tarball made by \`npm pack\` through npx ("npx -y --package=FILE crm-mcp"). --npx alone uses
"npx -y crm-mcp@${VERSION}", which works only once that version is published on npm.
--sandbox prints an entry for the built-in demo accounts; like every entry it carries the safety and tool
settings set here (CRM_ALLOW_WRITES, CRM_SAFE_MODE, CRM_TOOLSETS, ...), so Claude Desktop runs the same mode.
`;

export interface ClaudeEntry {
  mcpServers: Record<string, { command: string; args: string[]; env: Record<string, string> }>;
}

export async function run(argv: string[], env: Env = process.env): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      'with-secrets': { type: 'boolean', default: false },
      name: { type: 'string', default: 'crm' },
      npx: { type: 'boolean', default: false },
      package: { type: 'string' },
      config: { type: 'string' },
      sandbox: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    out(USAGE);
    return 0;
  }
  if (positionals[0] !== 'claude' || positionals.length > 1)
    throw new ConfigError([`config: unknown target "${positionals.join(' ')}" (expected: crm-mcp config claude)`]);
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(values.name!)) throw new ConfigError([`--name: "${values.name}" must be letters, digits, _ or -`]);
  if (values.package !== undefined && !existsSync(values.package))
    throw new ConfigError([`--package: "${values.package}" does not exist (make it with \`npm pack\`)`]);
  const { entry, notes } = await buildEntry(env, {
    withSecrets: values['with-secrets']!,
    name: values.name!,
    npx: values.npx! || values.package !== undefined,
    packageFile: values.package,
    configPath: values.config,
    sandbox: values.sandbox!,
  });
  out(JSON.stringify(entry, null, 2));
  for (const n of notes) process.stderr.write(`${n}\n`);
  return 0;
}

export async function buildEntry(
  env: Env,
  o: { withSecrets: boolean; name: string; npx: boolean; packageFile?: string; configPath?: string; sandbox: boolean },
): Promise<{ entry: ClaudeEntry; notes: string[] }> {
  const notes: string[] = [];
  const e: Record<string, string> = {};
  const args: string[] = [];
  let relevant: readonly EnvVar[];
  if (o.sandbox) {
    args.push('--sandbox');
    // Refuse to print an entry for a setup the server would refuse to start with (the emulators are not started).
    loadConfig({ env, connections: sandboxStandIns });
    // The sandbox's connections are its emulators, but the safety flags, the toolsets and the other
    // process-wide settings still come from the environment: the entry carries the mode that was asked for.
    relevant = PRINTED.filter((v) => appliesWithConfigFile(v) && !UNREAD_BY_SANDBOX.has(v.name));
  } else {
    // What a sign-in learnt that the environment does not say yet (e.g. the account address a CRM named).
    for (const l of o.configPath ? [] : await learntSettings(env, true)) {
      env = { ...env, ...l.env };
      notes.push(l.note);
    }
    // Refuse to print an entry for a setup the server would refuse to start with.
    loadConfig({ env, configPath: o.configPath });
    if (o.configPath) args.push('--config', resolve(o.configPath));
    // With --config the file holds the connections; the process-wide settings and the safety defaults still come from here.
    relevant = o.configPath ? PRINTED.filter(appliesWithConfigFile) : PRINTED;
    for (const name of SKIPPED) if (env[name]?.trim()) notes.push(`Left out ${name}: a one-time code is exchanged once; the tokens it gave are in the store.`);
  }
  for (const v of relevant) {
    for (const name of namesOf(v)) {
      const value = env[name]?.trim();
      if (!value) continue;
      e[name] = v.secret && !o.withSecrets ? placeholder(v, name, value) : maskUrlPassword(value, o.withSecrets);
    }
  }
  const self = cliPath();
  const viaNpx = o.npx || self.split(sep).includes('_npx');
  const command = viaNpx ? 'npx' : process.execPath;
  const fullArgs = !viaNpx
    ? [self, ...args]
    : o.packageFile
      ? ['-y', `--package=${resolve(o.packageFile)}`, 'crm-mcp', ...args]
      : ['-y', `crm-mcp@${VERSION}`, ...args];
  if (viaNpx && !o.packageFile) {
    notes.push(
      `npx fetches crm-mcp@${VERSION} from the npm registry: this works only once that version is published. From a clone or a tarball, run without --npx (or with --package ./crm-mcp-${VERSION}.tgz).`,
    );
  }
  if (!o.withSecrets && Object.keys(e).some((k) => SECRET_VARS.has(k))) {
    notes.push('Credentials are shown as placeholders: replace each <your …> with the value, or run again with --with-secrets (then keep the output private).');
  }
  notes.push(
    'Paste the entry into claude_desktop_config.json (macOS: ~/Library/Application Support/Claude/, Windows: %APPDATA%\\Claude\\) and restart Claude Desktop.',
  );
  return { entry: { mcpServers: { [o.name]: { command, args: fullArgs, env: e } } }, notes };
}

function placeholder(v: EnvVar, name: string, value: string): string {
  // A webhook URL keeps its portal and user id: only the secret segment is a credential.
  if (v.secretPart === 'webhook-secret' && /\/rest\/\d+\//.test(value)) return maskWebhook(value, '<your webhook secret>');
  return `<your ${name}>`;
}

/** A URL's password (e.g. in CRM_MCP_STORE=redis://user:password@host) is a credential even in a plain setting. */
function maskUrlPassword(value: string, withSecrets: boolean): string {
  if (withSecrets || !/^[a-z][a-z0-9+.-]*:\/\/[^/@]*:[^/@]*@/i.test(value)) return value;
  return value.replace(/^([a-z][a-z0-9+.-]*:\/\/[^/@:]*:)[^/@]*@/i, '$1<your password>@');
}

/** The absolute path of this installation's cli.js. */
function cliPath(): string {
  const p = CLI_PATH;
  try {
    return realpathSync(p);
  } catch {
    return p;
  }
}
