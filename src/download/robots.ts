// src/download/robots.ts: robots.txt (RFC 9309, with Google's extensions): a parser, and a
// per-origin cache that fetches each robots.txt once.
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
  /** the pattern as written (its length is the rule's specificity) */
  pattern: string;
  match: (path: string) => boolean;
}

interface Group {
  agents: string[];
  rules: Rule[];
  crawlDelay?: number;
}

/** Google ignores robots.txt content past 500 KiB. */
export const ROBOTS_MAX_BYTES = 500 * 1024;

/** The product token of a User-Agent string: "mocra-ts/0.1 (+https://…)" → "mocra-ts". */
export function productToken(userAgent: string): string {
  return (userAgent.trim().split(/[\s/;(]/)[0] ?? "").toLowerCase();
}

function encodePattern(p: string): string {
  // non-ASCII characters are compared percent-encoded, as URLs carry them
  return p.replace(/[^\x21-\x7e]/g, (c) => encodeURIComponent(c));
}

function compile(pattern: string): (path: string) => boolean {
  const p = encodePattern(pattern);
  const anchored = p.endsWith("$");
  const body = anchored ? p.slice(0, -1) : p;
  if (!body.includes("*")) {
    return anchored ? (path) => path === body : (path) => path.startsWith(body);
  }
  const re = new RegExp(`^${body.split("*").map((s) => s.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join(".*")}${anchored ? "$" : ""}`);
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

/**
 * Parses robots.txt for `userAgent` (its product token is matched case-insensitively against
 * the groups' User-agent lines; the longest matching one wins, groups naming the same agent are
 * merged; else the `*` groups; else no rules). Allow/Disallow patterns support `*` and a
 * trailing `$`; the longest matching pattern decides and Allow wins a tie; `/robots.txt` is
 * always allowed. Unknown lines are ignored.
 */
export function parseRobotsTxt(text: string, userAgent: string): RobotsRules {
  const token = productToken(userAgent);
  const groups: Group[] = [];
  const sitemaps: string[] = [];
  let current: Group | undefined;
  let lastWasAgent = false;
  for (const raw of text.slice(0, ROBOTS_MAX_BYTES).split(/\r\n|\r|\n/)) {
    const line = raw.replace(/#.*$/, "").trim();
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    const field = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    switch (field) {
      case "user-agent":
      case "useragent":
      case "user agent":
        if (!lastWasAgent || !current) {
          current = { agents: [], rules: [] };
          groups.push(current);
        }
        current.agents.push(value.toLowerCase().split("/")[0].trim());
        lastWasAgent = true;
        continue;
      case "allow":
      case "disallow":
        lastWasAgent = false;
        if (!current) continue;
        if (value === "") continue; // "Disallow:" = nothing disallowed
        current.rules.push({ allow: field === "allow", pattern: value, match: compile(value.startsWith("/") || value.startsWith("*") ? value : `/${value}`) });
        continue;
      case "crawl-delay":
      case "crawldelay": {
        lastWasAgent = false;
        const d = Number(value);
        if (current && Number.isFinite(d) && d >= 0 && current.crawlDelay === undefined) current.crawlDelay = d;
        continue;
      }
      case "sitemap":
      case "site-map":
        sitemaps.push(value);
        continue;
      default:
        lastWasAgent = false;
    }
  }

  let best = "";
  for (const g of groups) {
    for (const a of g.agents) {
      if (a !== "*" && a !== "" && token.startsWith(a) && a.length > best.length) best = a;
    }
  }
  const chosen = groups.filter((g) => g.agents.includes(best === "" ? "*" : best));
  const rules = chosen.flatMap((g) => g.rules);
  const crawlDelaySecs = chosen.find((g) => g.crawlDelay !== undefined)?.crawlDelay;

  return {
    crawlDelaySecs,
    sitemaps,
    isAllowed(url: string): boolean {
      if (rules.length === 0) return true;
      const path = robotsPath(url);
      if (path === "/robots.txt") return true;
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
export type RobotsFetcher = (url: string) => Promise<RobotsFetchResult>;

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

  async check(url: string): Promise<RobotsVerdict> {
    let origin: string;
    try {
      origin = new URL(url).origin;
    } catch {
      return { allowed: true };
    }
    if (robotsPath(url) === "/robots.txt") return { allowed: true };
    const { entry, rules } = await this.rulesFor(origin);
    if (entry.kind === "unavailable") {
      return { allowed: false, unavailable: true, retryAfterMs: Math.max(1, entry.until - Date.now()), reason: entry.reason ?? "robots.txt unavailable" };
    }
    if (!rules.isAllowed(url)) return { allowed: false, unavailable: false };
    return rules.crawlDelaySecs !== undefined ? { allowed: true, crawlDelaySecs: rules.crawlDelaySecs } : { allowed: true };
  }

  /** The parsed rules of an origin (fetching robots.txt if needed). */
  async rulesFor(origin: string): Promise<{ entry: Entry; rules: RobotsRules }> {
    const hit = this.local.get(origin);
    if (hit && hit.entry.until > Date.now()) return hit;
    let p = this.inflight.get(origin);
    if (!p) {
      p = this.load(origin).finally(() => this.inflight.delete(origin));
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

  private async load(origin: string): Promise<{ entry: Entry; rules: RobotsRules }> {
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
        entry = await this.fetchEntry(origin);
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

  private async fetchEntry(origin: string): Promise<Entry> {
    const now = Date.now();
    let r: RobotsFetchResult;
    try {
      r = await this.options.fetch(`${origin}/robots.txt`);
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
