// src/ratelimit/keys.ts: what a rate limit applies to. By default a request's key is the
// registrable domain of its host (eTLD+1 from the Public Suffix List, via tldts: ICANN section,
// so "www.shop.example.co.uk" and "img.example.co.uk" share "example.co.uk"; an IP address or a
// single-label host such as "localhost" is its own key). Other modes: the host (with port), the
// module (`module:<name>`), or the proxy the request goes through (`proxy:<host:port>`).
import { getDomain } from "tldts";
import type { RateLimitKeyMode } from "../config/schema.ts";
import type { Request } from "../model/index.ts";

const TLD_OPTIONS = { extractHostname: false, validateHostname: false, detectIp: true, allowPrivateDomains: false } as const;
const DOMAIN_CACHE_MAX = 10_000;
const domainCache = new Map<string, string>();

/** The registrable domain of a host name (lowercase, no port); the host itself for IPs and single labels. */
export function registrableDomain(hostname: string): string {
  const host = hostname.toLowerCase().replace(/\.$/, "");
  const hit = domainCache.get(host);
  if (hit !== undefined) return hit;
  const d = host.startsWith("[") ? host : (getDomain(host, TLD_OPTIONS) ?? host);
  if (domainCache.size >= DOMAIN_CACHE_MAX) domainCache.clear();
  domainCache.set(host, d);
  return d;
}

/** `host[:port]` and `hostname` of an absolute URL, lowercase; undefined if it is not one. */
export function hostOf(url: string): { host: string; hostname: string } | undefined {
  try {
    const u = new URL(url);
    return { host: u.host.toLowerCase(), hostname: u.hostname.toLowerCase() };
  } catch {
    return undefined;
  }
}

/** The key of the request's site: its registrable domain ("domain" and "module"/"proxy" fallbacks) or host. */
export function siteKey(url: string, mode: "domain" | "host" = "domain"): string {
  const h = hostOf(url);
  if (!h) return url;
  return mode === "host" ? h.host : registrableDomain(h.hostname);
}

/**
 * The rate-limit key of a request: `request.limit_id` when the request sets one (mocra's),
 * else by `mode`. `proxy` is the `host:port` of the proxy this request goes through; in mode
 * "proxy" a request without a proxy falls back to its domain.
 */
export function rateLimitKey(req: Request, mode: RateLimitKeyMode, proxy?: string): string {
  if (req.limitId) return req.limitId;
  switch (mode) {
    case "domain":
      return siteKey(req.url, "domain");
    case "host":
      return siteKey(req.url, "host");
    case "module":
      return `module:${req.module}`;
    case "proxy":
      return proxy ? `proxy:${proxy}` : siteKey(req.url, "domain");
  }
}
