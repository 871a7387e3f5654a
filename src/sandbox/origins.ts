/**
 * The origins of the CRM emulators this process is running. A test that builds providers itself reads them to
 * say which loopback addresses a Bitrix24 "portal moved" redirect may carry a credential between (the
 * providers' `trustedOrigins`, passed in at build time; `--sandbox` passes the origins of the emulators it
 * started). No security decision reads this set: a loopback server nobody named, such as a test's stand-in
 * attacker or anything else listening on the machine, never receives a credential.
 */
const running = new Set<string>();

export function registerEmulatorOrigin(origin: string): void {
  running.add(new URL(origin).origin);
}

export function unregisterEmulatorOrigin(origin: string): void {
  running.delete(new URL(origin).origin);
}

/** The emulators running now (a snapshot: one started later is not in it). */
export function runningEmulatorOrigins(): string[] {
  return [...running];
}
