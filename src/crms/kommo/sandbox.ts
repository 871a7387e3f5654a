/**
 * `--sandbox` (contract.ts `SandboxPart`): the Kommo emulator with demo data and a long-lived token for it. The
 * emulator is loaded only here, when the sandbox starts: it plays the CRM and is no part of the server.
 */
import type { SandboxPart } from '../contract.js';
import { KOMMO_KIND } from './capabilities.js';
import type { KommoConnection } from './connection.js';

export const kommoSandbox: SandboxPart = {
  async start() {
    const { startKommoEmulator } = await import('../../sandbox/kommo/index.js');
    const kommo = await startKommoEmulator({});
    const token = kommo.createLongLivedToken({ expiresInSec: 30 * 86400 });
    return {
      connections: (policy): KommoConnection[] => [{ name: KOMMO_KIND, provider: KOMMO_KIND, baseUrl: kommo.url, accessToken: token, policy }],
      origin: kommo.url,
      what: 'Kommo account',
      close: () => kommo.close(),
    };
  },
};
