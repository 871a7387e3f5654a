/**
 * argv → a sub-command from the table below, or serve (the default). Sub-commands print to stdout (they
 * are not the stdio server) and are loaded only when used, so serving does not pay for them.
 */
import { ConfigError } from '../config/config.js';
import { defaultRegistry } from '../crms/registry.js';
import { VERSION } from '../version.js';
import { parseServeArgs, serve } from './serve.js';

const MODULES = defaultRegistry.modules();
const labels = MODULES.map((m) => m.fullLabel ?? m.label);
/** The CRMs, with their other brands: `A and B`, `A, B and C`. */
const CRMS = labels.length > 1 ? `${labels.slice(0, -1).join(', ')} and ${labels.at(-1)}` : (labels[0] ?? '');
/** What `crm-mcp auth` takes: the sign-in names of every CRM that has one. */
const SIGN_INS = MODULES.flatMap((m) => m.signIn?.names ?? []).join('|');

export const HELP = `crm-mcp ${VERSION}: MCP server for ${CRMS}

Usage:
  crm-mcp                       serve MCP over stdio (Claude Desktop)
  crm-mcp --http [--host 127.0.0.1] [--port 3333]
                                serve Streamable HTTP at /mcp
  crm-mcp --sandbox [--http]    use built-in emulated CRM accounts with demo data
  crm-mcp --config FILE         several named connections from a JSON file
  crm-mcp auth ${SIGN_INS}
                                sign in to an OAuth integration/app and save its tokens
  crm-mcp doctor [--json] [--sandbox]
                                check every connection, token, scope and setting, with fixes
                                (exit 0 healthy, 1 problems, 3 warnings only); --sandbox: the demo accounts
  crm-mcp config claude [--with-secrets] [--sandbox]
                                print the Claude Desktop mcpServers entry for this setup
  crm-mcp events bind|unbind|status [--url PUBLIC_BASE_URL] [--rotate]
                                point the CRM's webhooks at this server's /hooks receiver (admin), remove, show
  crm-mcp import FILE [--connection NAME] [--dry-run] [--resume ID]
                                import leads from a CSV (header row) or JSON file; resumable, no duplicates
  crm-mcp approve [<id>] | decline <id>
                                CRM_CONFIRM_WRITES: list the writes waiting for a person, approve or decline one

Safety (environment): CRM_ALLOW_WRITES=true enables creating records; CRM_SAFE_MODE=false also allows
changing them; CRM_ALLOW_DELETE=true allows deleting. See README.md for every variable.
`;

interface SubCommand {
  load(): Promise<{ run(argv: string[]): Promise<number> }>;
}

/** The sub-commands, by their first argument. */
export const COMMANDS: Readonly<Record<string, SubCommand>> = {
  auth: { load: () => import('../commands/auth.js') },
  doctor: { load: () => import('../commands/doctor.js') },
  config: { load: () => import('../commands/config-claude.js') },
  events: { load: () => import('../commands/events.js') },
  import: { load: () => import('../commands/import.js') },
  approve: { load: async () => ({ run: (argv) => import('../commands/approve.js').then((m) => m.run(argv, true)) }) },
  decline: { load: async () => ({ run: (argv) => import('../commands/approve.js').then((m) => m.run(argv, false)) }) },
};

async function main(argv: string[]): Promise<void> {
  const sub = argv[0] !== undefined && Object.hasOwn(COMMANDS, argv[0]) ? COMMANDS[argv[0]] : undefined;
  if (sub) {
    const code = await (await sub.load()).run(argv.slice(1));
    // Exit explicitly (after stdout drains): keep-alive sockets of the HTTP client must not hold the process.
    process.stdout.write('', () => process.exit(code));
    return;
  }
  const args = parseServeArgs(argv);
  if (args.help) {
    process.stdout.write(HELP);
    return;
  }
  if (args.version) {
    process.stdout.write(`${VERSION}\n`);
    return;
  }
  await serve(args);
}

/** Runs the binary: exit 2 for configuration and usage errors, 1 for anything else. */
export function run(argv: string[]): void {
  main(argv).catch((err: unknown) => {
    if (err instanceof ConfigError) {
      process.stderr.write(`crm-mcp: ${err.message}\n`);
      process.exit(2);
    }
    const e = err as Error & { code?: string };
    if (e?.code?.startsWith?.('ERR_PARSE_ARGS')) {
      process.stderr.write(`crm-mcp: ${e.message}\n\n${HELP}`);
      process.exit(2);
    }
    process.stderr.write(`crm-mcp: ${e?.message ?? String(err)}\n`);
    process.exit(1);
  });
}
