/**
 * The browser half of `crm-mcp auth`: a one-shot loopback server that receives the consent page's redirect,
 * and a best-effort "open this address in the browser" (the token exchange is the CRM's: crms/sign-in-kit.ts).
 */
import { spawn } from 'node:child_process';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { AuthError } from '../crms/sign-in-kit.js';
import { redact } from '../util/redact.js';
import { escapeHtml } from './common.js';

export { AuthError };

// ---------------------------------------------------------------- loopback callback server

export interface Hit {
  url: URL;
  reply(status: number, title: string, text: string): void;
}

export async function listen(redirect: URL, timeoutSec: number): Promise<{ next: Promise<Hit>; close(): Promise<void> }> {
  let deliver!: (h: Hit) => void;
  let fail!: (e: Error) => void;
  const next = new Promise<Hit>((resolve, reject) => {
    deliver = resolve;
    fail = reject;
  });
  let taken = false;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', redirect.origin);
    if (req.method !== 'GET' || url.pathname !== redirect.pathname || taken) {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('Not found');
      return;
    }
    taken = true;
    deliver({
      url,
      reply: (status, title, text) => {
        const body = `<!doctype html><meta charset="utf-8"><title>${escapeHtml(title)}</title><h1>${escapeHtml(title)}</h1><p>${escapeHtml(redact(text))}</p>`;
        res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', connection: 'close' }).end(body);
      },
    });
  });
  const port = Number(redirect.port || 80);
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        new AuthError(
          err.code === 'EADDRINUSE'
            ? `Port ${port} on ${redirect.hostname} is in use, so the sign-in answer cannot be received there. Stop the program using it, or choose another port in the redirect URI (here and in the integration's settings).`
            : `Cannot listen on ${redirect.host} for the sign-in answer (${err.code ?? err.message}).`,
        ),
      ),
    );
    server.listen(port, redirect.hostname, () => resolve());
  });
  const timer = setTimeout(
    () => fail(new AuthError(`No sign-in answer arrived within ${timeoutSec} s; nothing was saved. Run the command again and open the printed address.`)),
    timeoutSec * 1000,
  );
  return {
    next,
    close: () =>
      new Promise<void>((resolve) => {
        clearTimeout(timer);
        server.close(() => resolve());
        server.closeAllConnections?.();
      }),
  };
}

/** Best effort: a missing browser or opener is never an error (the address is printed anyway). */
export function openBrowser(url: string): void {
  const [cmd, args] =
    process.platform === 'darwin' ? ['open', [url]] : process.platform === 'win32' ? ['cmd', ['/c', 'start', '""', url]] : ['xdg-open', [url]];
  try {
    const child = spawn(cmd as string, args as string[], { stdio: 'ignore', detached: true });
    child.on('error', () => undefined);
    child.unref();
  } catch {
    // no opener: the user copies the address
  }
}
