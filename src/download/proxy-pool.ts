// src/download/proxy-pool.ts: the proxies of `crawler.proxy_path`, rotated round robin over the
// healthy ones, scored by outcome, evicted when failing and brought back after a cool-down.
import { readFileSync } from "node:fs";
import type { CrawlEvent } from "../events/events.ts";
import type { ProxyEnum, Request, Response } from "../model/index.ts";
import type { Downloader } from "./downloader.ts";
import { DownloadError } from "./download-error.ts";

/** One proxy and its health. */
export interface ProxyEntry {
  /** full URL, credentials included: http://user:pass@host:port */
  readonly url: string;
  /** host:port, what events, keys and logs show (never the credentials) */
  readonly hostPort: string;
  /** requests per second through this proxy; 0 = the pool default */
  readonly rateLimit: number;
  /** success EWMA in [0, 1] (1 = every recent request worked) */
  health: number;
  /** consecutive failures */
  failures: number;
  /** ms epoch until which it is out of rotation (0 = in rotation) */
  evictedUntil: number;
}

const SCHEMES = new Set(["http:", "https:"]);

/**
 * Parses a proxy list: one proxy per line, `http://user:pass@host:port`, `https://host:port`,
 * or mocra's bare `ip:port` (= http://ip:port); `#` starts a comment; blank lines are skipped.
 * Throws naming the line of anything else.
 */
export function parseProxyList(text: string, file = "proxy list"): ProxyEntry[] {
  const out: ProxyEntry[] = [];
  const seen = new Set<string>();
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.replace(/#.*$/, "").trim();
    if (!line) return;
    const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(line) ? line : `http://${line}`;
    let u: URL;
    try {
      u = new URL(withScheme);
    } catch {
      throw new Error(`${file}:${i + 1}: not a proxy URL: ${JSON.stringify(line)} (expected http://user:pass@host:port or host:port)`);
    }
    if (!SCHEMES.has(u.protocol)) throw new Error(`${file}:${i + 1}: unsupported proxy scheme ${u.protocol} (http and https are supported)`);
    if (!u.port && !/^[a-z]+:\/\/[^/]*:\d+/i.test(withScheme)) {
      throw new Error(`${file}:${i + 1}: proxy ${JSON.stringify(line)} has no port`);
    }
    const hostPort = `${u.hostname}:${u.port || (u.protocol === "https:" ? "443" : "80")}`;
    if (seen.has(u.href)) return;
    seen.add(u.href);
    out.push({ url: u.href.replace(/\/$/, ""), hostPort, rateLimit: 0, health: 1, failures: 0, evictedUntil: 0 });
  });
  return out;
}

/** The proxy a Request names itself (mocra's ProxyEnum), as an entry outside the pool. */
export function proxyOfRequest(proxy: ProxyEnum): ProxyEntry {
  let url: string;
  let rateLimit: number;
  if (proxy.kind === "IpProxy") {
    const p = proxy.value;
    const scheme = (p.proxyType || "http").toLowerCase().replace(/:.*$/, "");
    const auth = p.username ? `${encodeURIComponent(p.username)}:${encodeURIComponent(p.password ?? "")}@` : "";
    url = `${scheme}://${auth}${p.ip}:${p.port}`;
    rateLimit = p.rateLimit;
  } else {
    const t = proxy.value;
    const base = /^[a-z]+:\/\//i.test(t.endpoint) ? t.endpoint : `${(t.tunnelType || "http").toLowerCase()}://${t.endpoint}`;
    const u = new URL(base);
    if (t.username) {
      u.username = encodeURIComponent(t.username);
      u.password = encodeURIComponent(t.password ?? "");
    }
    url = u.href.replace(/\/$/, "");
    rateLimit = t.rateLimit;
  }
  const u = new URL(url);
  return { url, hostPort: `${u.hostname}:${u.port || (u.protocol === "https:" ? "443" : "80")}`, rateLimit: rateLimit > 0 ? rateLimit : 0, health: 1, failures: 0, evictedUntil: 0 };
}

export interface ProxyPoolOptions {
  /** consecutive failures that evict a proxy (config download_config.proxy_max_failures) */
  maxFailures?: number;
  /** eviction length, ms (config download_config.proxy_cooldown_secs) */
  cooldownMs?: number;
  /** a proxy whose health EWMA falls below this is evicted too (default 0.2) */
  minHealth?: number;
  /** EWMA weight of the latest outcome (default 0.2) */
  alpha?: number;
  emit?: (event: CrawlEvent) => void;
}

/**
 * Round robin over the proxies in rotation. Each outcome updates the proxy's health
 * (`health = (1 - alpha) * health + alpha * (ok ? 1 : 0)`); `maxFailures` consecutive failures
 * (or health under `minHealth`) evict it for `cooldownMs` (event `proxy_evicted`); after that
 * it is back in rotation on probation (health 0.5, event `proxy_restored`). When every proxy is
 * evicted, the one due back first is used rather than none.
 */
export class ProxyPool {
  private cursor = 0;
  private readonly assignments = new WeakMap<Request, ProxyEntry>();
  private readonly o: Required<Omit<ProxyPoolOptions, "emit">>;
  emit: (event: CrawlEvent) => void;

  constructor(
    readonly entries: readonly ProxyEntry[],
    options: ProxyPoolOptions = {},
  ) {
    this.o = {
      maxFailures: options.maxFailures ?? 3,
      cooldownMs: options.cooldownMs ?? 60_000,
      minHealth: options.minHealth ?? 0.2,
      alpha: options.alpha ?? 0.2,
    };
    this.emit = options.emit ?? (() => {});
  }

  static fromFile(path: string, options: ProxyPoolOptions = {}): ProxyPool {
    let text: string;
    try {
      text = readFileSync(path, "utf8");
    } catch (err) {
      throw new Error(`crawler.proxy_path: cannot read ${path}: ${err instanceof Error ? err.message : String(err)}`);
    }
    const entries = parseProxyList(text, path);
    if (entries.length === 0) throw new Error(`crawler.proxy_path: ${path} lists no proxy`);
    return new ProxyPool(entries, options);
  }

  get size(): number {
    return this.entries.length;
  }

  /** proxies in rotation now */
  get healthy(): number {
    const now = Date.now();
    return this.entries.filter((e) => e.evictedUntil <= now).length;
  }

  /** The next proxy in rotation (round robin), skipping `exclude`. */
  next(exclude?: ReadonlySet<ProxyEntry>): ProxyEntry | undefined {
    const now = Date.now();
    const n = this.entries.length;
    for (let i = 0; i < n; i++) {
      const e = this.entries[(this.cursor + i) % n];
      if (exclude?.has(e)) continue;
      if (e.evictedUntil > 0 && e.evictedUntil <= now) this.restore(e);
      if (e.evictedUntil === 0) {
        this.cursor = (this.cursor + i + 1) % n;
        return e;
      }
    }
    // all out: the one due back first (better than failing every request)
    let soonest: ProxyEntry | undefined;
    for (const e of this.entries) if (!exclude?.has(e) && (!soonest || e.evictedUntil < soonest.evictedUntil)) soonest = e;
    return soonest;
  }

  /** The proxy for this request: its own (`Request.proxy`), an earlier assignment, or the next in rotation. */
  assign(req: Request): ProxyEntry | undefined {
    const had = this.assignments.get(req);
    if (had) return had;
    const e = req.proxy ? proxyOfRequest(req.proxy) : this.next();
    if (e) this.assignments.set(req, e);
    return e;
  }

  assigned(req: Request): ProxyEntry | undefined {
    return this.assignments.get(req);
  }

  reassign(req: Request, e: ProxyEntry): void {
    this.assignments.set(req, e);
  }

  report(e: ProxyEntry, ok: boolean, reason = ""): void {
    if (!this.entries.includes(e)) return; // a request's own proxy: not scored
    e.health = (1 - this.o.alpha) * e.health + this.o.alpha * (ok ? 1 : 0);
    if (ok) {
      e.failures = 0;
      return;
    }
    e.failures++;
    if (e.evictedUntil === 0 && (e.failures >= this.o.maxFailures || e.health < this.o.minHealth)) {
      e.evictedUntil = Date.now() + this.o.cooldownMs;
      this.emit({ type: "proxy_evicted", proxy: e.hostPort, reason: reason || `${e.failures} failures`, ms: this.o.cooldownMs });
    }
  }

  private restore(e: ProxyEntry): void {
    e.evictedUntil = 0;
    e.failures = 0;
    e.health = 0.5;
    this.emit({ type: "proxy_restored", proxy: e.hostPort });
  }
}

/** A connection that never reached the target (the proxy refused it): safe to try another proxy. */
function isConnectFailure(err: unknown): boolean {
  const msg = err instanceof Error ? err.message : String(err);
  return /ECONNREFUSED|ECONNRESET|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|EAI_AGAIN|UND_ERR_SOCKET|UND_ERR_CONNECT|Connection refused|os error 111/i.test(msg);
}

/**
 * A Downloader that sends each request through a proxy: the request's own (`Request.proxy`),
 * else the one the politeness gate assigned, else the next in rotation. The outcome is reported
 * to the pool (a response of any status = the proxy works; a network error or timeout = it
 * failed). When the proxy refused the connection, up to `failover` other proxies are tried
 * within the same attempt. Without a pool and without a proxy on the request, `direct` is used.
 */
export class ProxiedDownloader implements Downloader {
  private readonly clients = new Map<string, Downloader>();

  constructor(
    private readonly pool: ProxyPool | undefined,
    private readonly direct: Downloader,
    /** a downloader sending through this proxy URL (one per proxy, reused) */
    private readonly viaProxy: (proxyUrl: string) => Downloader,
    private readonly failover = 2,
  ) {}

  private clientFor(e: ProxyEntry): Downloader {
    let c = this.clients.get(e.url);
    if (!c) {
      c = this.viaProxy(e.url);
      this.clients.set(e.url, c);
    }
    return c;
  }

  async fetch(req: Request): Promise<Response> {
    let entry = this.pool ? this.pool.assign(req) : req.proxy ? proxyOfRequest(req.proxy) : undefined;
    if (!entry) return this.direct.fetch(req);
    const tried = new Set<ProxyEntry>();
    for (;;) {
      tried.add(entry);
      try {
        const res = await this.clientFor(entry).fetch(req);
        this.pool?.report(entry, true);
        return res;
      } catch (err) {
        // only a network error or a timeout says something about the proxy
        if (!(err instanceof DownloadError) || !err.retryable || err.status !== undefined) throw err;
        this.pool?.report(entry, false, err.message);
        const other = req.proxy || !this.pool || tried.size > this.failover || !isConnectFailure(err) ? undefined : this.pool.next(tried);
        if (!other || tried.has(other)) throw err;
        entry = other;
        this.pool?.reassign(req, entry);
      }
    }
  }
}
