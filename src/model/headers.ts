/** mocra's Headers: an ordered list of key/value pairs (wire: {"headers":[{"key","value"}]}). */
export interface HeaderItem {
  key: string;
  value: string;
}

export function headersFromRecord(record: Record<string, string> | undefined): HeaderItem[] {
  return record ? Object.entries(record).map(([key, value]) => ({ key, value })) : [];
}

/**
 * Request headers that carry credentials: never sent to another origin than the one they were
 * meant for (the Fetch standard drops Authorization on a cross-origin redirect; a crawler also
 * drops these and the module's own `sensitiveHeaders`).
 */
export const CREDENTIAL_HEADERS: readonly string[] = ["authorization", "proxy-authorization", "cookie"];

/** Whether `key` is a credential header (CREDENTIAL_HEADERS or one of `sensitive`, any case). */
export function isCredentialHeader(key: string, sensitive?: readonly string[]): boolean {
  const k = key.toLowerCase();
  return CREDENTIAL_HEADERS.includes(k) || (sensitive !== undefined && sensitive.some((s) => s.toLowerCase() === k));
}

/** Whether two absolute URLs share scheme, host and port (false when either does not parse). */
export function sameOrigin(a: string, b: string): boolean {
  try {
    return new URL(a).origin === new URL(b).origin;
  } catch {
    return false;
  }
}
