/** Driving the built binary (dist/cli.js) from tests: a clean environment, output capture, free ports. */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));

/** The test process's environment without any crm-mcp setting (so the developer's own config never leaks in). */
export function baseEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !/^(CRM_|KOMMO_|AMOCRM_|BITRIX)/.test(k)) env[k] = v;
  return env;
}

export function tempHome(): string {
  return mkdtempSync(join(tmpdir(), 'crm-mcp-cli-'));
}

export interface Running {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves with the first match of `re` in stdout. */
  waitFor(re: RegExp): Promise<RegExpExecArray>;
  done: Promise<{ code: number | null; stdout: string; stderr: string }>;
}

export function start(args: string[], env: Record<string, string>): Running {
  const child = spawn(process.execPath, [CLI, ...args], { env: { ...baseEnv(), ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const waiters: Array<{ re: RegExp; resolve: (m: RegExpExecArray) => void }> = [];
  child.stdout!.on('data', (d) => {
    out += String(d);
    for (const w of [...waiters]) {
      const m = w.re.exec(out);
      if (m) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(m);
      }
    }
  });
  child.stderr!.on('data', (d) => (err += String(d)));
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
    child.on('close', (code) => resolve({ code, stdout: out, stderr: err })),
  );
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    waitFor: (re) =>
      new Promise((resolve, reject) => {
        const m = re.exec(out);
        if (m) return resolve(m);
        waiters.push({ re, resolve });
        void done.then((r) => reject(new Error(`exited ${r.code} before ${re}: ${r.stdout}\n${r.stderr}`)));
      }),
    done,
  };
}

export function runCli(args: string[], env: Record<string, string>) {
  return start(args, env).done;
}

/** Runs another program (a conformance suite, an inspector) from the repository root, in the clean environment. */
export function runCommand(cmd: string, args: string[]): Promise<{ code: number | null; output: string; stdout: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { cwd: ROOT, env: baseEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    let stdout = '';
    p.stdout.on('data', (d) => {
      output += String(d);
      stdout += String(d);
    });
    p.stderr.on('data', (d) => (output += String(d)));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code, output, stdout }));
  });
}

/** `crm-mcp --sandbox --http --port 0` from dist/cli.js, and the /mcp URL it printed. */
export async function startSandboxHttp(): Promise<{ server: Running; url: string }> {
  const server = start(['--sandbox', '--http', '--port', '0'], {});
  const url = (await server.waitFor(/(http:\/\/127\.0\.0\.1:\d+\/mcp)/))[1]!;
  return { server, url };
}

/** A port nothing listens on (bound, then released). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}
