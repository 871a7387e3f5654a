/**
 * The approval page of the HTTP service (CRM_CONFIRM_WRITES): `GET /approvals` lists the writes waiting for a
 * person, `POST /approvals/<id>/approve` and `/decline` answer one, and `GET /approvals/page` is a small page
 * that does both from a browser. Safe against cross-site requests: every data route wants the service's bearer
 * token in the Authorization header (a cross-site form or a cookie cannot carry it), passes the Host check of
 * /mcp, and accepts no Origin but this server's own (not even the CORS origins allowed on /mcp: those are the
 * agent's pages); nothing changes state on a GET. Without a configured token the page is off: on a loopback
 * service without one, any local process (the agent's own tools included) could approve.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ApprovalDesk, ApprovalRecord } from '../../approvals/desk.js';
import { bearerPrincipal } from '../../approvals/ids.js';
import { CrmError } from '../../domain/errors.js';
import { bearerOf, rpcError, type Guard } from './guards.js';

export interface ApprovalRoutesOptions {
  desk: ApprovalDesk;
  /** The /mcp guard without its CORS origins (createGuard with `corsOrigins` empty). */
  guard: Guard;
  /** A bearer token is configured (CRM_MCP_HTTP_TOKEN). */
  hasToken: boolean;
  json: (res: ServerResponse, status: number, body: string, headers?: Record<string, string>) => void;
}

const ACTION = /^\/approvals\/(apr_[A-Za-z0-9_-]{12}\.[A-Za-z0-9_-]{22})\/(approve|decline)$/;

function view(r: ApprovalRecord) {
  return {
    id: r.id,
    tool: r.tool,
    connection: r.connection,
    effect: r.effect,
    summary: r.summary,
    requests: r.requests,
    expires_at: new Date(r.expires).toISOString(),
  };
}

const PAGE = `<!doctype html>
<meta charset="utf-8"><title>crm-mcp: writes waiting for approval</title>
<style>body{font:14px system-ui;margin:2em;max-width:60em}pre{background:#f4f4f4;padding:.5em;overflow:auto}li{margin-bottom:1.5em}</style>
<h1>Writes waiting for your approval</h1>
<p><label>Service token (CRM_MCP_HTTP_TOKEN): <input id="t" type="password" size="40"></label> <button id="load">Show</button></p>
<p id="msg"></p><ul id="list"></ul>
<script>
const $ = (id) => document.getElementById(id);
const call = (method, path) => fetch(path, { method, headers: { authorization: 'Bearer ' + $('t').value } });
async function load() {
  const r = await call('GET', '/approvals');
  if (!r.ok) { $('msg').textContent = 'Refused (' + r.status + ')'; return; }
  const { pending } = await r.json();
  $('msg').textContent = pending.length ? '' : 'Nothing is waiting.';
  $('list').replaceChildren(...pending.map((p) => {
    const li = document.createElement('li');
    const h = document.createElement('p'); h.textContent = p.summary + ' (expires ' + p.expires_at + ')';
    const pre = document.createElement('pre'); pre.textContent = JSON.stringify(p.requests, null, 2);
    li.append(h, pre);
    for (const a of ['approve', 'decline']) {
      const b = document.createElement('button'); b.textContent = a;
      b.onclick = async () => { const x = await call('POST', '/approvals/' + encodeURIComponent(p.id) + '/' + a); $('msg').textContent = a + ': ' + x.status; load(); };
      li.append(b, ' ');
    }
    return li;
  }));
}
$('load').onclick = load;
</script>
`;

/** Answers a request under /approvals (the caller has matched the path). */
export function approvalRoutes(o: ApprovalRoutesOptions): (req: IncomingMessage, res: ServerResponse, path: string) => Promise<void> {
  return async (req, res, path) => {
    if (!o.hasToken) {
      o.json(res, 403, rpcError(-32000, 'The approval page needs a bearer token: set CRM_MCP_HTTP_TOKEN, or approve with `crm-mcp approve <id>`.'));
      return;
    }
    if (path === '/approvals/page') {
      if (req.method !== 'GET') return o.json(res, 405, rpcError(-32000, 'Method not allowed'), { allow: 'GET' });
      // The page holds no data: what it shows it fetches with the token the person types.
      res
        .writeHead(200, {
          'content-type': 'text/html; charset=utf-8',
          'content-security-policy': "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'",
          'x-frame-options': 'DENY',
        })
        .end(PAGE);
      return;
    }
    if (!o.guard(req, res, {})) return;
    if (path === '/approvals') {
      if (req.method !== 'GET') return o.json(res, 405, rpcError(-32000, 'Method not allowed'), { allow: 'GET' });
      o.json(res, 200, JSON.stringify({ pending: (await o.desk.pending()).map(view) }), { 'cache-control': 'no-store' });
      return;
    }
    const m = ACTION.exec(path);
    if (!m) return o.json(res, 404, rpcError(-32000, 'Not found: GET /approvals, POST /approvals/<id>/approve or /decline'));
    if (req.method !== 'POST') return o.json(res, 405, rpcError(-32000, 'Method not allowed: approving changes state, so it is a POST'), { allow: 'POST' });
    req.resume(); // no body is read
    const by = `${bearerPrincipal(bearerOf(req) ?? '')} from ${req.socket.remoteAddress ?? '?'}`;
    try {
      const rec = await o.desk.decide(decodeURIComponent(m[1]!), m[2] === 'approve', { by, via: 'http-page' });
      o.json(res, 200, JSON.stringify({ id: rec.id, status: rec.status }), { 'cache-control': 'no-store' });
    } catch (err) {
      if (!(err instanceof CrmError)) throw err;
      o.json(res, err.code === 'approval_invalid' ? 404 : 409, JSON.stringify({ error: err.toJSON() }));
    }
  };
}
