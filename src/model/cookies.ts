/** mocra's CookieItem (serialized with 8 fields in this order). */
export interface CookieItem {
  name: string;
  value: string;
  domain: string;
  path: string;
  /** unix seconds */
  expires: number | null;
  /** seconds */
  maxAge: number | null;
  secure: boolean;
  httpOnly: boolean | null;
}

export function cookie(init: Pick<CookieItem, "name" | "value"> & Partial<CookieItem>): CookieItem {
  return { domain: "", path: "/", expires: null, maxAge: null, secure: false, httpOnly: null, ...init };
}

/** The Cookie request header for these cookies (domain/path matching is the caller's job). */
export function cookieHeader(cookies: readonly CookieItem[]): string {
  return cookies.map((c) => `${c.name}=${c.value}`).join("; ");
}

/** Whether a cookie for `domain` applies to `host` (the host or a subdomain of it). */
export function domainMatches(host: string, domain: string): boolean {
  const d = domain.toLowerCase().replace(/^\./, "");
  return d === "" || host === d || host.endsWith(`.${d}`);
}
