/**
 * Real Redis for the multi-instance tests: the one `.ci/run` starts (CRM_TEST_REDIS_URL), or a private
 * `redis-server` a test can stop and restart. In CI a missing Redis fails the test; it never skips.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { freePort } from './cli.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const IN_CI = process.env.CI === 'true' || process.env.CI === '1';

export function hasRedisServer(): boolean {
  return spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;
}

/** Whether Redis tests can run here; in CI they must. */
export function redisAvailable(): boolean {
  const ok = !!process.env.CRM_TEST_REDIS_URL || hasRedisServer();
  if (!ok && IN_CI) throw new Error('Redis is required in CI: install redis-server (Debian package) or set CRM_TEST_REDIS_URL');
  if (!ok) process.stderr.write('\n[redis tests skipped: no redis-server here; .ci/run installs it]\n');
  return ok;
}

export interface PrivateRedis {
  url: string;
  stop(): Promise<void>;
  start(): Promise<void>;
}

/** A redis-server owned by the test (so it can be stopped mid-run), on a free loopback port. */
export async function startPrivateRedis(): Promise<PrivateRedis> {
  const port = await freePort();
  // Append-only with fsync on every write, so data survives the stop/start a test does.
  const dir = mkdtempSync(join(tmpdir(), 'crm-redis-'));
  let child: ChildProcess | undefined;
  const start = async () => {
    child = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'yes', '--appendfsync', 'always', '--dir', dir],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    await new Promise<void>((resolve, reject) => {
      let out = '';
      child!.stdout!.on('data', (d) => {
        out += String(d);
        if (out.includes('Ready to accept connections')) resolve();
      });
      child!.once('exit', (code) => reject(new Error(`redis-server exited ${code}: ${out.slice(-500)}`)));
    });
  };
  const stop = async () => {
    if (!child || child.exitCode !== null) return;
    const c = child;
    await new Promise<void>((resolve) => {
      c.once('exit', () => resolve());
      c.kill('SIGKILL');
    });
  };
  await start();
  return { url: `redis://127.0.0.1:${port}/0`, stop, start };
}

/** The shared Redis (CI) or a private one; `db` keeps test files apart. */
export async function testRedisUrl(db: number): Promise<{ url: string; close(): Promise<void> }> {
  const shared = process.env.CRM_TEST_REDIS_URL;
  if (shared) {
    const u = new URL(shared);
    u.pathname = `/${db}`;
    return { url: u.toString(), close: async () => undefined };
  }
  const r = await startPrivateRedis();
  return { url: r.url, close: r.stop };
}

/** Calls `attempt` until it succeeds (Redis reconnecting), at most `tries` times 100 ms apart. */
export async function recovers(attempt: () => Promise<boolean>, tries = 50): Promise<boolean> {
  for (let i = 0; i < tries; i++) {
    if (await attempt()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}
