/**
 * `--sandbox` (contract.ts `SandboxPart`): the Bitrix24 emulator with demo data, reached by its inbound webhook.
 * The emulator is loaded only here, when the sandbox starts: it plays the CRM and is no part of the server.
 */
import type { SandboxPart } from '../contract.js';
import { BITRIX24_KIND } from './capabilities.js';
import type { BitrixConnection } from './connection.js';

export const bitrix24Sandbox: SandboxPart = {
  async start() {
    const { startBitrixEmulator } = await import('../../sandbox/bitrix24/index.js');
    const bitrix = await startBitrixEmulator({});
    return {
      connections: (policy): BitrixConnection[] => [{ name: BITRIX24_KIND, provider: BITRIX24_KIND, webhookUrl: bitrix.webhookUrl, plan: 'standard', policy }],
      origin: bitrix.url,
      what: 'Bitrix24 portal',
      close: () => bitrix.close(),
    };
  },
};
