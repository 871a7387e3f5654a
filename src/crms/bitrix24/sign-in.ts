/**
 * `crm-mcp auth bitrix24` (contract.ts `SignInPart`): what the command lists, without loading the flow
 * (sign-in-flow.ts), which loads only when someone signs in.
 */
import type { SignInPart } from '../contract.js';

export const bitrix24SignIn: SignInPart = {
  names: ['bitrix24'],
  what: 'app (Bitrix24)',
  needs: 'Bitrix24 needs BITRIX_CLIENT_ID, BITRIX_CLIENT_SECRET, BITRIX_PORTAL and BITRIX_REDIRECT_URI.',
  async prepare(ctx) {
    return (await import('./sign-in-flow.js')).prepareBitrix(ctx);
  },
};
