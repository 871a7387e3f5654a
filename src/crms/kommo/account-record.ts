/** The account host `crm-mcp auth kommo` learnt from Kommo's redirect, as the store keeps it (sign-in and its flow share it). */
/** Where `crm-mcp auth kommo` records the account host Kommo named in its redirect (`referer`). */
export function kommoAccountKey(clientId: string): string {
  return `account:kommo:${clientId}`;
}

export interface KommoAccountRecord {
  /** Account origin, e.g. https://acme.kommo.com */
  base_url: string;
  saved_at: number;
}
