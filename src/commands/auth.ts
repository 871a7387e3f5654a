/**
 * `crm-mcp auth <name>`: the OAuth sign-in for an integration/app of any CRM whose module has a sign-in part
 * (contract.ts `SignInPart`; `names` are what this command takes). Prints (and, on a terminal, opens) the
 * consent URL with a random `state`, waits for the browser's redirect on the loopback redirect URI, and lets
 * the CRM's flow check `state`, exchange the one-time code and save the tokens under the very key and record
 * shape its providers read (RotatingTokens), so the next `crm-mcp` start simply uses them.
 */
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from '../config/config.js';
import type { SignInContext, SignInFlow, SignInPart } from '../crms/contract.js';
import { defaultRegistry } from '../crms/registry.js';
import { openStore } from '../store/store.js';
import { AuthError, listen, openBrowser } from './auth-browser.js';
import { out, type Env } from './common.js';

/** The CRMs that can be signed in to, in the registry's order. */
function signIns(): SignInPart[] {
  return defaultRegistry.modules().flatMap((m) => (m.signIn ? [m.signIn] : []));
}

function usage(parts: readonly SignInPart[]): string {
  return `Usage: crm-mcp auth ${parts.flatMap((p) => p.names).join('|')} [--config FILE] [--connection NAME] [--timeout SECONDS] [--no-browser]

${wrap(`Signs in to an OAuth ${parts.map((p) => p.what).join(' or ')} and saves its tokens in the store.`)}
${wrap(parts.map((p) => p.needs).join(' '))}
`;
}

/** Greedy wrap at 110 columns, the width of the other usage texts. */
function wrap(text: string, width = 110): string {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  lines.push(line);
  return lines.join('\n');
}

/** `a`, `a or b`, `a, b or c`. */
function orList(items: readonly string[]): string {
  return items.length > 1 ? `${items.slice(0, -1).join(', ')} or ${items.at(-1)}` : (items[0] ?? '');
}

export { AuthError };

export async function run(argv: string[], env: Env = process.env): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: 'string' },
      connection: { type: 'string' },
      timeout: { type: 'string', default: '600' },
      'no-browser': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  const parts = signIns();
  const target = positionals[0]?.toLowerCase();
  if (values.help || !target) {
    out(usage(parts));
    return values.help ? 0 : 2;
  }
  const part = parts.find((p) => p.names.includes(target));
  if (!part || positionals.length > 1) {
    throw new ConfigError([`auth: unknown target "${positionals.join(' ')}" (expected ${orList(parts.flatMap((p) => p.names))})`]);
  }
  const timeoutSec = Number(values.timeout);
  if (!Number.isInteger(timeoutSec) || timeoutSec < 1 || timeoutSec > 3600)
    throw new ConfigError([`--timeout: "${values.timeout}" must be whole seconds between 1 and 3600`]);

  const ctx: SignInContext = {
    name: target,
    env,
    configPath: values.config,
    connection: values.connection,
    loadConfig: () => loadConfig({ env, configPath: values.config }),
    problem: (messages) => new ConfigError(messages),
  };
  const flow = await part.prepare(ctx);
  const redirect = loopbackRedirect(flow);
  const store = await openStore(flow.store);
  try {
    if (store.description.startsWith('memory')) {
      throw new ConfigError(['CRM_MCP_STORE: "memory" keeps nothing after this command exits; use the default file store or a file path for `crm-mcp auth`']);
    }
    const state = randomBytes(24).toString('base64url');
    const consent = flow.consentUrl(state);
    const callback = await listen(redirect, timeoutSec);
    try {
      out(
        `Open this address in a browser to allow ${flow.grantee} access (waiting up to ${Math.round(timeoutSec / 60) || 1} min for the answer on ${redirect.origin}${redirect.pathname}):`,
      );
      out();
      out(`  ${consent}`);
      out();
      if (!values['no-browser'] && process.stdout.isTTY && env.CRM_MCP_NO_BROWSER !== '1') openBrowser(consent);
      const hit = await callback.next;
      try {
        const lines = await flow.finish(store, state, hit.url);
        hit.reply(200, 'Signed in', `crm-mcp saved the ${flow.brand} tokens. You can close this tab.`);
        for (const l of lines) out(l);
        return 0;
      } catch (err) {
        hit.reply(400, 'Sign-in failed', err instanceof Error ? err.message : String(err));
        throw err;
      }
    } finally {
      await callback.close();
    }
  } finally {
    await store.close();
  }
}

/** The redirect URI must be a plain-http loopback address: this command listens there itself. */
function loopbackRedirect(flow: SignInFlow): URL {
  let u: URL;
  try {
    u = new URL(flow.redirectUri);
  } catch {
    throw new ConfigError([`${flow.redirectVar}: "${flow.redirectUri}" is not a URL (expected e.g. http://127.0.0.1:8765/callback)`]);
  }
  if (u.protocol !== 'http:' || !['127.0.0.1', 'localhost'].includes(u.hostname)) {
    throw new ConfigError([
      `${flow.redirectVar}: "${flow.redirectUri}" must be http://127.0.0.1:PORT/… or http://localhost:PORT/… for \`crm-mcp auth\`, which receives the redirect itself. ` +
        `Set the integration's Redirect URI to such an address (e.g. http://127.0.0.1:8765/callback)${flow.redirectAlternative ?? ''}.`,
    ]);
  }
  return u;
}
