/**
 * The origins of the CRM emulators this process is running (tests, `--sandbox`). A Bitrix24 "portal moved"
 * redirect to a loopback address is followed only between two of these (see
 * providers/bitrix24/relocation.ts): a loopback server the process did not start as an emulator, such as a
 * test's stand-in attacker or anything else listening on the machine, never receives a credential.
 * No dependencies, so the providers can import it without loading the emulators.
 */
const running = new Set<string>();

export function registerEmulatorOrigin(origin: string): void {
  running.add(new URL(origin).origin);
}

export function unregisterEmulatorOrigin(origin: string): void {
  running.delete(new URL(origin).origin);
}

export function isEmulatorOrigin(origin: string): boolean {
  return running.has(origin);
}
