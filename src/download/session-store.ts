// src/cache/session-store.ts: per-module cookies and headers, kept in the shared cache under
// mocra's keys `<name>:cache:cookies:<module>` and `<name>:cache:headers:<module>`.
import { type CookieItem, domainMatches, type HeaderItem, type Request, type Response } from "../model/index.ts";
import type { Downloader } from "./downloader.ts";
import type { Cache } from "../cache/cache.ts";

/** Cookies kept per module at most (the oldest go first). */
export const MAX_COOKIES_PER_MODULE = 300;

interface WireCookie {
  name: string;
  value: string;
  domain: string;
  path: string;
  expires: number | null;
  max_age: number | null;
  secure: boolean;
  http_only: boolean | null;
}

function toWire(c: CookieItem): WireCookie {
  return { name: c.name, value: c.value, domain: c.domain, path: c.path, expires: c.expires, max_age: c.maxAge, secure: c.secure, http_only: c.httpOnly };
}

function fromWire(w: WireCookie): CookieItem {
  return { name: w.name, value: w.value, domain: w.domain, path: w.path || "/", expires: w.expires ?? null, maxAge: w.max_age ?? null, secure: !!w.secure, httpOnly: w.http_only ?? null };
}


function pathMatches(path: string, cookiePath: string): boolean {
  if (!cookiePath || cookiePath === "/") return true;
  return path === cookiePath || path.startsWith(cookiePath.endsWith("/") ? cookiePath : `${cookiePath}/`);
}

/**
 * The cookies and headers of each module, shared by all workers (through the cache's Redis
 * level). Values are mocra's JSON: `{"cookies":[{name,value,domain,path,expires,max_age,secure,
 * http_only}]}` and `{"headers":[{key,value}]}`. Cookies are stored with absolute expiry
 * (a Max-Age becomes `expires`); expired ones are dropped on write. Concurrent writers of one
 * module's cookies: the last write wins.
 */
export class SessionStore {
  constructor(
    private readonly cache: Cache,
    /** how long a module's cookies/headers are kept after their last change, ms */
    private readonly ttlMs: number,
  ) {}

  async cookies(module: string): Promise<CookieItem[]> {
    const text = await this.cache.getText("cookies", module);
    if (!text) return [];
    try {
      const parsed = JSON.parse(text) as { cookies?: WireCookie[] };
      const now = Date.now() / 1000;
      return (parsed.cookies ?? []).map(fromWire).filter((c) => c.expires === null || c.expires > now);
    } catch {
      return [];
    }
  }

  /** Merges cookies set by a response into the module's jar (same name+domain+path replaces). */
  async addCookies(module: string, cookies: readonly CookieItem[]): Promise<void> {
    if (cookies.length === 0) return;
    const now = Date.now() / 1000;
    const jar = await this.cookies(module);
    for (const c0 of cookies) {
      const c = { ...c0 };
      if (c.maxAge !== null) {
        c.expires = Math.floor(now + c.maxAge);
        c.maxAge = null;
      }
      const i = jar.findIndex((x) => x.name === c.name && x.domain === c.domain && x.path === c.path);
      if (i >= 0) jar.splice(i, 1);
      if (c.expires === null || c.expires > now) jar.push(c);
    }
    while (jar.length > MAX_COOKIES_PER_MODULE) jar.shift();
    await this.cache.setText("cookies", module, JSON.stringify({ cookies: jar.map(toWire) }), this.ttlMs);
  }

  async headers(module: string): Promise<HeaderItem[]> {
    const text = await this.cache.getText("headers", module);
    if (!text) return [];
    try {
      return (JSON.parse(text) as { headers?: HeaderItem[] }).headers ?? [];
    } catch {
      return [];
    }
  }

  async setHeaders(module: string, headers: readonly HeaderItem[]): Promise<void> {
    await this.cache.setText("headers", module, JSON.stringify({ headers }), this.ttlMs);
  }

  /** The module's cookies that apply to this URL (domain, path, secure, expiry). */
  async cookiesFor(module: string, url: string): Promise<CookieItem[]> {
    const jar = await this.cookies(module);
    if (jar.length === 0) return jar;
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      return [];
    }
    const host = u.hostname.toLowerCase();
    return jar.filter((c) => domainMatches(host, c.domain) && pathMatches(u.pathname, c.path) && (!c.secure || u.protocol === "https:"));
  }
}

/**
 * A Downloader decorator: sends the module's stored cookies and headers with each request (the
 * request's own win), and stores the cookies its responses set. Requests without a module are
 * passed through.
 */
export class SessionDownloader implements Downloader {
  constructor(
    private readonly inner: Downloader,
    private readonly store: SessionStore,
  ) {}

  async fetch(req: Request): Promise<Response> {
    if (!req.module) return this.inner.fetch(req);
    let send = req;
    try {
      const [cookies, headers] = await Promise.all([this.store.cookiesFor(req.module, req.url), this.store.headers(req.module)]);
      if (cookies.length > 0 || headers.length > 0) {
        const ownCookies = new Set(req.cookies.map((c) => c.name));
        const ownHeaders = new Set(req.headers.map((h) => h.key.toLowerCase()));
        send = {
          ...req,
          cookies: [...cookies.filter((c) => !ownCookies.has(c.name)), ...req.cookies],
          headers: [...headers.filter((h) => !ownHeaders.has(h.key.toLowerCase())), ...req.headers],
        };
      }
    } catch {
      // the jar is unavailable: send the request as it is
    }
    const res = await this.inner.fetch(send);
    if (res.cookies.length > 0) await this.store.addCookies(req.module, res.cookies).catch(() => {});
    return res;
  }
}
