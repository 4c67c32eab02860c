// src/download/robots.ts: robots.txt by RFC 9309 (a parser, checked by tests/robots-rfc9309.test.ts),
// and a per-origin cache that fetches each robots.txt once.
import type { Request as MocraRequest } from "../model/index.ts";
import { LRUCache } from "lru-cache";
import type { Cache } from "../cache/cache.ts";
import type { LockService } from "../sync/lock.ts";

/** What robots.txt says for one user agent. */
export interface RobotsRules {
  /** true if the URL's path (and query) may be fetched */
  isAllowed(url: string): boolean;
  /** the group's Crawl-delay, seconds */
  readonly crawlDelaySecs: number | undefined;
  /** the sitemaps listed (any group) */
  readonly sitemaps: readonly string[];
}

interface Rule {
  allow: boolean;
  /** the normalised pattern; its length in octets is the rule's specificity (RFC 9309 §2.2.2) */
  pattern: string;
  match: (path: string) => boolean;
}

interface Group {
  /** product tokens, lower-cased ("*" for the global group; "" for a user-agent line we cannot read) */
  agents: string[];
  rules: Rule[];
  crawlDelay?: number;
}

/** RFC 9309 §2.5: crawlers must parse at least 500 KiB; we parse exactly that much and no more. */
export const ROBOTS_MAX_BYTES = 500 * 1024;

const TOKEN = /^[A-Za-z_-]+/;

/**
 * Our product token (RFC 9309 §2.2.1: letters, "_" and "-") from a User-Agent string, lower-cased:
 * "mocra-ts/0.1 (+https://…)" → "mocra-ts"; a browser-style "Mozilla/5.0 (compatible;
 * ExampleBot/0.1; …)" → "examplebot", the token the RFC's own example uses.
 */
export function productToken(userAgent: string): string {
  const ua = userAgent.trim();
  const compatible = /^Mozilla\/[^(]*\(compatible;\s*([A-Za-z_-]+)/i.exec(ua);
  return (compatible?.[1] ?? TOKEN.exec(ua)?.[0] ?? "").toLowerCase();
}

/** The product token a User-agent line names: "*", or its leading [A-Za-z_-]+ run ("FOO BAR" → "foo", "Googlebot/2.1" → "googlebot"). */
function agentToken(value: string): string {
  if (value.startsWith("*")) return "*";
  return (TOKEN.exec(value)?.[0] ?? "").toLowerCase();
}

const HEX = "0123456789ABCDEF";
const UNRESERVED = /[A-Za-z0-9\-._~]/;
const utf8 = new TextEncoder();

/**
 * RFC 9309 §2.2.2 / §2.2.3 normalisation, applied alike to a rule's pattern and to the URL's path
 * and query, so that both compare octet by octet: percent-encoded unreserved characters are
 * decoded, other escapes get upper-case hex, characters outside printable ASCII are UTF-8
 * percent-encoded; in the query, ":", "/", "?" and "@" are encoded (the RFC's example
 * `/foo/bar?baz=https://foo.bar` = `…?baz=https%3A%2F%2Ffoo.bar`). In a URL a literal "*" or "$"
 * is encoded (%2A, %24), so only a pattern's own "*" and trailing "$" are special.
 */
function normalise(s: string, isPattern: boolean): string {
  let out = "";
  let inQuery = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === "%" && /^[0-9A-Fa-f]{2}$/.test(s.slice(i + 1, i + 3))) {
      const byte = Number.parseInt(s.slice(i + 1, i + 3), 16);
      const ch = String.fromCharCode(byte);
      out += byte < 0x80 && UNRESERVED.test(ch) ? ch : `%${s.slice(i + 1, i + 3).toUpperCase()}`;
      i += 2;
    } else if (c === "%") {
      out += "%25";
    } else if (c === "?" && !inQuery) {
      inQuery = true;
      out += c;
    } else if (inQuery && (c === ":" || c === "/" || c === "?" || c === "@")) {
      out += `%${c.charCodeAt(0).toString(16).toUpperCase()}`;
    } else if (!isPattern && (c === "*" || c === "$")) {
      out += c === "*" ? "%2A" : "%24";
    } else if (c > "\x20" && c < "\x7f") {
      out += c;
    } else {
      for (const b of utf8.encode(c)) out += `%${HEX[b >> 4]}${HEX[b & 15]}`;
    }
  }
  return out;
}

/** A matcher of normalised paths for one pattern: "*" = any run of octets, a trailing "$" = end of path. */
function compile(pattern: string): (path: string) => boolean {
  const anchored = pattern.endsWith("$");
  const body = (anchored ? pattern.slice(0, -1) : pattern).replaceAll("$", "%24");
  if (!body.includes("*")) {
    return anchored ? (path) => path === body : (path) => path.startsWith(body);
  }
  const re = new RegExp(`^${body.split("*").map((s) => s.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join(".*")}${anchored ? "$" : ""}`, "s");
  return (path) => re.test(path);
}

/** The path and query of a URL as robots rules see it ("/" when empty). */
export function robotsPath(url: string): string {
  try {
    const u = new URL(url);
    return (u.pathname || "/") + u.search;
  } catch {
    return url.startsWith("/") ? url : `/${url}`;
  }
}

/** Field names as written in the wild; RFC 9309 §2.2.4 lets crawlers accept common misspellings. */
const FIELDS: Record<string, "agent" | "allow" | "disallow" | "delay" | "sitemap"> = {
  "user-agent": "agent",
  useragent: "agent",
  "user agent": "agent",
  allow: "allow",
  disallow: "disallow",
  dissallow: "disallow",
  dissalow: "disallow",
  disalow: "disallow",
  "crawl-delay": "delay",
  crawldelay: "delay",
  sitemap: "sitemap",
  "site-map": "sitemap",
};

/** The first ROBOTS_MAX_BYTES octets of `text` (as UTF-8). */
function cut(text: string): string {
  if (text.length * 3 <= ROBOTS_MAX_BYTES) return text;
  const bytes = utf8.encode(text);
  return bytes.length <= ROBOTS_MAX_BYTES ? text : new TextDecoder().decode(bytes.subarray(0, ROBOTS_MAX_BYTES));
}

/**
 * Parses robots.txt for `userAgent` by RFC 9309:
 * - groups (§2.1, §2.2.1): one or more user-agent lines and the rules after them; a user-agent
 *   line after a rule starts the next group, other records (Crawl-delay, Sitemap, unknown lines)
 *   never end a group or split its user-agent lines; rules before any user-agent line are ignored;
 * - matching: our product token equals a group's token, case-insensitively (no prefix match);
 *   every group naming it is merged; the `*` groups apply only when none does; else no rules;
 * - rules (§2.2.2, §2.2.3): the most specific match (most octets) wins, `allow` wins a tie,
 *   `*` and a trailing `$`, percent-encoding normalised on both sides; `/robots.txt` is allowed;
 * - a leading BOM is skipped, lines that do not parse are ignored (§2.3.1.5), and only the first
 *   500 KiB are read (§2.5).
 */
export function parseRobotsTxt(text: string, userAgent: string): RobotsRules {
  const token = productToken(userAgent);
  const groups: Group[] = [];
  const sitemaps: string[] = [];
  let current: Group | undefined;
  let takingAgents = false;
  const body = cut(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
  for (const raw of body.split(/\r\n|\r|\n/)) {
    const hash = raw.indexOf("#");
    const line = (hash >= 0 ? raw.slice(0, hash) : raw).trim();
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    const field = FIELDS[line.slice(0, colon).trim().toLowerCase()];
    const value = line.slice(colon + 1).trim();
    switch (field) {
      case "agent":
        if (!takingAgents || !current) {
          current = { agents: [], rules: [] };
          groups.push(current);
          takingAgents = true;
        }
        current.agents.push(agentToken(value));
        break;
      case "allow":
      case "disallow": {
        takingAgents = false;
        if (!current || value === "") break; // "Disallow:" disallows nothing
        const pattern = normalise(value.startsWith("/") || value.startsWith("*") ? value : `/${value}`, true);
        current.rules.push({ allow: field === "allow", pattern, match: compile(pattern) });
        break;
      }
      case "delay": {
        const d = Number(value);
        if (current && value !== "" && Number.isFinite(d) && d >= 0 && current.crawlDelay === undefined) current.crawlDelay = d;
        break;
      }
      case "sitemap":
        if (value !== "") sitemaps.push(value);
        break;
      default:
      // an unknown record: ignored, and it does not end the group (§2.2.4)
    }
  }

  const own = token === "" ? [] : groups.filter((g) => g.agents.includes(token));
  const chosen = own.length > 0 ? own : groups.filter((g) => g.agents.includes("*"));
  const rules = chosen.flatMap((g) => g.rules);
  const crawlDelaySecs = chosen.find((g) => g.crawlDelay !== undefined)?.crawlDelay;

  return {
    crawlDelaySecs,
    sitemaps,
    isAllowed(url: string): boolean {
      if (rules.length === 0) return true;
      const raw = robotsPath(url);
      if (raw === "/robots.txt") return true;
      const path = normalise(raw, false);
      let winner: Rule | undefined;
      for (const r of rules) {
        if (!r.match(path)) continue;
        if (!winner || r.pattern.length > winner.pattern.length || (r.pattern.length === winner.pattern.length && r.allow && !winner.allow)) winner = r;
      }
      return winner ? winner.allow : true;
    },
  };
}

/** Everything allowed (robots.txt missing or 4xx). */
export const ALLOW_ALL: RobotsRules = { crawlDelaySecs: undefined, sitemaps: [], isAllowed: () => true };

/** The outcome of fetching robots.txt. */
export type RobotsFetchResult = { status: number; body: string } | { error: string } | { unusable: string };

/** Fetches `<origin>/robots.txt` (through the crawler's own downloader, so proxies apply). */
/**
 * `from`: the request that needs the file (its module and the hosts its crawl named: private
 * hosts are allowed per crawl, docs/security.md)
 */
export type RobotsFetcher = (url: string, from?: Pick<MocraRequest, "module" | "meta">) => Promise<RobotsFetchResult>;

export type RobotsVerdict =
  | { allowed: true; crawlDelaySecs?: number }
  | { allowed: false; unavailable: false }
  /** robots.txt could not be read (5xx, 429, unreachable): hold this origin back for retryAfterMs */
  | { allowed: false; unavailable: true; retryAfterMs: number; reason: string };

export interface RobotsOptions {
  userAgent: string;
  fetch: RobotsFetcher;
  /** shared cache (kind "robots", key = origin); optional */
  cache?: Cache;
  /** how long a fetched robots.txt is used, ms (default 1 day) */
  ttlMs?: number;
  /** how long an unreadable robots.txt holds its origin back before it is fetched again, ms (default 60 s) */
  unavailableMs?: number;
  /** parsed robots.txt kept in process (default 10 000 origins) */
  maxOrigins?: number;
  onUnavailable?: (origin: string, reason: string, retryMs: number) => void;
  /** with a shared cache: one worker per origin fetches, holding the lock `robots:<origin>` */
  locks?: LockService;
  /** lease of that lock, and how long the others wait for its holder's result, ms (default 15 s) */
  fetchLockMs?: number;
}

interface Entry {
  /** "rules": text to obey; "allow": no restrictions; "unavailable": hold back */
  kind: "rules" | "allow" | "unavailable";
  text?: string;
  reason?: string;
  /** ms epoch until which this entry holds */
  until: number;
}

/**
 * robots.txt per origin (scheme + host + port), fetched once and cached: parsed in a process
 * LRU, and as text in the shared cache (Redis when there is one) so other workers do not fetch
 * it again. As Google does: 2xx = obey the file; 4xx (but 429) = no restrictions; 5xx, 429 or
 * an unreachable server = the whole origin is disallowed for a while (`unavailableMs`), then
 * the file is fetched again; a file that cannot be used (over 500 KiB, a redirect loop) = no
 * restrictions. Concurrent checks of one origin share one fetch, and with a shared cache one
 * worker fetches while the others wait for its result (a fenced lock, src/sync: a fetcher that
 * lost its lock cannot overwrite the cache entry of the one that took it over).
 */
export class RobotsTxt {
  private readonly local: LRUCache<string, { entry: Entry; rules: RobotsRules }>;
  private readonly inflight = new Map<string, Promise<{ entry: Entry; rules: RobotsRules }>>();
  private readonly ttlMs: number;
  private readonly unavailableMs: number;

  constructor(private readonly options: RobotsOptions) {
    this.local = new LRUCache({ max: options.maxOrigins ?? 10_000 });
    this.ttlMs = options.ttlMs ?? 86_400_000;
    this.unavailableMs = options.unavailableMs ?? 60_000;
  }

  async check(url: string, from?: Pick<MocraRequest, "module" | "meta">): Promise<RobotsVerdict> {
    let origin: string;
    try {
      origin = new URL(url).origin;
    } catch {
      return { allowed: true };
    }
    if (robotsPath(url) === "/robots.txt") return { allowed: true };
    const { entry, rules } = await this.rulesFor(origin, from);
    if (entry.kind === "unavailable") {
      return { allowed: false, unavailable: true, retryAfterMs: Math.max(1, entry.until - Date.now()), reason: entry.reason ?? "robots.txt unavailable" };
    }
    if (!rules.isAllowed(url)) return { allowed: false, unavailable: false };
    return rules.crawlDelaySecs !== undefined ? { allowed: true, crawlDelaySecs: rules.crawlDelaySecs } : { allowed: true };
  }

  /** The parsed rules of an origin (fetching robots.txt if needed). */
  async rulesFor(origin: string, from?: Pick<MocraRequest, "module" | "meta">): Promise<{ entry: Entry; rules: RobotsRules }> {
    const hit = this.local.get(origin);
    if (hit && hit.entry.until > Date.now()) return hit;
    let p = this.inflight.get(origin);
    if (!p) {
      p = this.load(origin, from).finally(() => this.inflight.delete(origin));
      this.inflight.set(origin, p);
    }
    return p;
  }

  private async fromCache(origin: string, fresh = false): Promise<Entry | undefined> {
    if (!this.options.cache) return undefined;
    try {
      const stored = await this.options.cache.getText("robots", origin, { fresh });
      if (stored) {
        const e = JSON.parse(stored) as Entry;
        if (e.until > Date.now()) return e;
      }
    } catch {
      // a cache problem is not a robots problem: fetch it
    }
    return undefined;
  }

  private async load(origin: string, from?: Pick<MocraRequest, "module" | "meta">): Promise<{ entry: Entry; rules: RobotsRules }> {
    let entry = await this.fromCache(origin);
    const cache = this.options.cache;
    let held: Awaited<ReturnType<LockService["tryAcquire"]>>;
    if (!entry && cache?.shared && this.options.locks) {
      // one worker fetches, the others wait for its result (up to the lock's life)
      const lockMs = this.options.fetchLockMs ?? 15_000;
      let locked = true;
      try {
        held = await this.options.locks.tryAcquire(`robots:${origin}`, lockMs);
        locked = held !== undefined;
      } catch {
        // Redis trouble: fetch it ourselves rather than wait
      }
      if (!locked) {
        const deadline = Date.now() + lockMs;
        for (let delay = 20; !entry && Date.now() < deadline; delay = Math.min(delay * 2, 250)) {
          await new Promise((r) => setTimeout(r, delay));
          entry = await this.fromCache(origin, true);
        }
      }
    }
    if (!entry) {
      try {
        entry = await this.fetchEntry(origin, from);
        if (this.options.cache) {
          const ttl = entry.until - Date.now();
          if (ttl > 0) await this.options.cache.setText("robots", origin, JSON.stringify(entry), ttl, held).catch(() => {});
        }
      } finally {
        await held?.release().catch(() => {});
      }
      if (entry.kind === "unavailable") this.options.onUnavailable?.(origin, entry.reason ?? "", entry.until - Date.now());
    }
    const rules = entry.kind === "rules" ? parseRobotsTxt(entry.text ?? "", this.options.userAgent) : ALLOW_ALL;
    const value = { entry, rules };
    this.local.set(origin, value, { ttl: Math.max(1, entry.until - Date.now()) });
    return value;
  }

  private async fetchEntry(origin: string, from?: Pick<MocraRequest, "module" | "meta">): Promise<Entry> {
    const now = Date.now();
    let r: RobotsFetchResult;
    try {
      r = await this.options.fetch(`${origin}/robots.txt`, from);
    } catch (err) {
      r = { error: err instanceof Error ? err.message : String(err) };
    }
    if ("error" in r) return { kind: "unavailable", reason: `robots.txt unreachable: ${r.error}`, until: now + this.unavailableMs };
    if ("unusable" in r) return { kind: "allow", reason: r.unusable, until: now + this.ttlMs };
    if (r.status >= 200 && r.status < 300) return { kind: "rules", text: r.body.slice(0, ROBOTS_MAX_BYTES), until: now + this.ttlMs };
    if (r.status === 429 || r.status >= 500) return { kind: "unavailable", reason: `robots.txt answered HTTP ${r.status}`, until: now + this.unavailableMs };
    // 4xx, and 3xx left after following redirects: no restrictions
    return { kind: "allow", until: now + this.ttlMs };
  }
}
