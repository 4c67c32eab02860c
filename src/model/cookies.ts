import { CookieJar, domainMatch, pathMatch } from "tough-cookie";

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

// RFC 6265 storage and matching, by tough-cookie (its parser, domain and public-suffix rules).
// On the wire a cookie stays mocra's CookieItem; the one addition is the convention curl and
// Python's cookiejar use for the host-only flag: a domain cookie's `domain` starts with "."
// (it is sent to subdomains too), a host-only cookie's `domain` is the host that set it.

/** Whether `c` is sent to subdomains of its domain (it was set with a Domain attribute). */
export function isDomainCookie(c: CookieItem): boolean {
  return c.domain.startsWith(".");
}

/** The domain a cookie belongs to, without the domain-cookie dot, lower case. */
export function cookieDomain(c: CookieItem): string {
  return c.domain.replace(/^\./, "").toLowerCase();
}

/** The host of a URL as cookies see it (lower case, IPv6 without brackets). */
export function cookieHost(url: URL): string {
  return url.hostname.toLowerCase().replace(/^\[(.*)\]$/, "$1");
}

/**
 * The cookies a response to `url` sets, as a browser would store them (RFC 6265 §5.3): a Domain
 * attribute must domain-match the host and must not be a public suffix (else the cookie is
 * dropped), no Domain makes a host-only cookie, no Path takes the request's directory, Max-Age
 * (also zero or negative: the cookie is deleted) wins over Expires, a Secure cookie only from
 * https. `expires` is absolute (unix seconds; 0 for "already expired"), `maxAge` what was sent.
 */
export function parseSetCookies(lines: readonly string[], url: string): CookieItem[] {
  if (lines.length === 0) return [];
  const out: CookieItem[] = [];
  for (const line of lines) {
    // a fresh jar per line: only its validation is used (the module's jar is SessionStore)
    const c = new CookieJar(undefined, { rejectPublicSuffixes: true }).setCookieSync(line, url, { ignoreError: true });
    if (!c || !c.domain) continue;
    const expiry = c.expiryTime();
    out.push({
      name: c.key,
      value: c.value,
      domain: c.hostOnly ? c.domain : `.${c.domain}`,
      path: c.path ?? "/",
      expires: expiry === undefined || expiry === Infinity ? null : expiry === -Infinity ? 0 : Math.floor(expiry / 1000),
      maxAge: typeof c.maxAge === "number" && Number.isFinite(c.maxAge) ? c.maxAge : null,
      secure: c.secure,
      httpOnly: c.httpOnly ? true : null,
    });
  }
  return out;
}

/**
 * Whether a stored cookie goes with a request to `url` (RFC 6265 §5.4): a host-only cookie to
 * its host alone, a domain cookie to the domain and its subdomains (never an IP address's
 * "subdomains"), its path a prefix of the request's on a "/" boundary, Secure only over https.
 * Cookies without a domain (a module's own request cookies) are not jar cookies: false.
 */
export function cookieMatches(c: CookieItem, url: URL, nowSecs = Date.now() / 1000): boolean {
  if (c.expires !== null && c.expires <= nowSecs) return false;
  if (c.secure && url.protocol !== "https:") return false;
  const domain = cookieDomain(c);
  if (domain === "") return false;
  const host = cookieHost(url);
  if (isDomainCookie(c) ? !domainMatch(host, domain, false) : host !== domain) return false;
  return pathMatch(url.pathname || "/", c.path || "/");
}

/** The cookies of `jar` that go with a request to `url`, longest path first (RFC 6265 §5.4 step 2). */
export function cookiesForUrl(jar: readonly CookieItem[], url: string): CookieItem[] {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return [];
  }
  const now = Date.now() / 1000;
  return jar.filter((c) => cookieMatches(c, u, now)).sort((a, b) => (b.path || "/").length - (a.path || "/").length);
}
