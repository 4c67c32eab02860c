// src/engine/politeness.ts: builds everything the request flow needs to be polite — rate
// limiter, concurrency leases, adaptive back-off and circuit breaker, robots.txt, proxy pool,
// caches — from config, on Redis (shared by all workers) or in memory (one process).
import type { Redis } from "ioredis";
import { type Config } from "../config/index.ts";
import { CachingDownloader } from "../download/response-cache.ts";
import { type Cache, TwoLevelCache } from "../cache/cache.ts";
import { SessionDownloader, SessionStore } from "../download/session-store.ts";
import { HttpClient } from "../download/http-client.ts";
import { privateNetworkPolicy } from "../download/private-network.ts";
import { ProxiedDownloader, ProxyPool } from "../download/proxy-pool.ts";
import { DownloadError } from "../download/download-error.ts";
import { ROBOTS_MAX_BYTES, RobotsTxt } from "../download/robots.ts";
import { type LockService, MemoryLockService, RedisLockService } from "../sync/lock.ts";
import type { EventBus } from "../events/bus.ts";
import type { CrawlEvent } from "../events/events.ts";
import { metaData, request, type Request } from "../model/index.ts";
import type { ModuleSettings } from "../modules/define.ts";
import { type ConcurrencyLimiter, MemoryConcurrencyLimiter, RedisConcurrencyLimiter } from "../ratelimit/concurrency.ts";
import { FeedbackDownloader, type GateSettings, RequestGate } from "../ratelimit/gate.ts";
import type { RateLimiter } from "../ratelimit/limiter.ts";
import { MemoryRateLimiter } from "../ratelimit/memory-limiter.ts";
import { MemoryPolitenessStore, Politeness, RedisPolitenessStore } from "../ratelimit/politeness.ts";
import { RedisRateLimiter } from "../ratelimit/redis-limiter.ts";
import { closeProxyTransports, proxyFetch } from "../runtime/proxy-fetch.ts";
import type { Downloader } from "../download/downloader.ts";

/** Where module settings come from (the ModuleRegistry fits). */
export interface ModuleLookup {
  has(name: string): boolean;
  settings(name: string): ModuleSettings;
}

/** The request flow's politeness stage and the download stack that goes with it. */
export interface PoliteStages {
  gate: RequestGate;
  /** response cache → feedback to the gate → proxy → module cookies/headers → base */
  downloader: Downloader;
}

/** Everything built by createPoliteness. */
export interface PolitenessKit {
  readonly limiter: RateLimiter;
  readonly concurrency: ConcurrencyLimiter;
  readonly politeness: Politeness;
  readonly robots: RobotsTxt;
  readonly proxies: ProxyPool | undefined;
  readonly cache: Cache;
  readonly sessions: SessionStore;
  /** locks shared by the workers (Redis) or this process: robots.txt fetches, modules' ctx.lock */
  readonly locks: LockService;
  /** true when the shared parts live in Redis */
  readonly distributed: boolean;
  /** The gate and download stack around `base` (built once per base and module lookup). */
  stages(base: Downloader, modules?: ModuleLookup): PoliteStages;
  /** Where events go (the worker's EventBus); may be set after creation. */
  setEvents(events: EventBus): void;
  /** Releases held locks, closes the proxy transports (the Redis connection belongs to the caller). */
  close(): Promise<void>;
}

export interface CreatePolitenessOptions {
  /** the rate limiter to use when there is no Redis (default: a new MemoryRateLimiter) */
  limiter?: RateLimiter;
  events?: EventBus;
  /** how long an unreadable robots.txt holds its origin back, ms (default 60 s) */
  robotsUnavailableMs?: number;
  /** how long a fetched robots.txt is used, ms (default 1 day) */
  robotsTtlMs?: number;
  /** a module's allowedDomains: hosts the crawl names, which may resolve to private addresses (docs/security.md) */
  allowedDomainsOf?: (module: string) => readonly string[] | undefined;
}

/** Robots.txt is fetched with at most this timeout, seconds. */
export const ROBOTS_TIMEOUT_SECS = 10;
/** A concurrency lease lives the request's timeout plus this, ms (renewed while held). */
export const LEASE_MARGIN_MS = 10_000;

/**
 * Builds the politeness kit from config. With `redis` (the `[cache.redis]` connection), the rate
 * limiter, concurrency leases, back-off/circuit state, robots.txt and the caches are shared by
 * every worker under `<name>:rate_limiter:*` and `<name>:cache:*`; without, they live in this
 * process. The proxy pool (crawler.proxy_path) is per process. Throws if the proxy list cannot
 * be read.
 */
export function createPoliteness(config: Config, redis?: Redis, options: CreatePolitenessOptions = {}): PolitenessKit {
  const d = config.downloadConfig;
  let bus: EventBus | undefined = options.events;
  const emit = (e: CrawlEvent) => bus?.emit(e);

  const limiter: RateLimiter = redis ? new RedisRateLimiter(redis, config.name) : (options.limiter ?? new MemoryRateLimiter());
  const concurrency: ConcurrencyLimiter = redis ? new RedisConcurrencyLimiter(redis, config.name) : new MemoryConcurrencyLimiter();
  const politeness = new Politeness(redis ? new RedisPolitenessStore(redis, config.name) : new MemoryPolitenessStore(), {
    circuitFailures: d.circuitFailures,
    circuitOpenMs: d.circuitOpenSecs * 1000,
    emit,
  });
  const cache = new TwoLevelCache({
    name: config.name,
    redis,
    l1MaxEntries: config.cache.l1MaxEntries,
    compressionThreshold: config.cache.compressionThreshold,
  });
  const sessions = new SessionStore(cache, (config.cache.ttl > 0 ? config.cache.ttl : 86_400) * 1000);
  const proxies = config.crawler.proxyPath
    ? ProxyPool.fromFile(config.crawler.proxyPath, { maxFailures: d.proxyMaxFailures, cooldownMs: d.proxyCooldownSecs * 1000, emit })
    : undefined;

  const privateNetworks = privateNetworkPolicy(d, options.allowedDomainsOf);
  const httpClient = (fetch?: typeof globalThis.fetch): HttpClient =>
    new HttpClient({ userAgent: config.crawler.userAgent, maxBodyBytes: d.maxResponseSize, maxRedirects: d.maxRedirects, followRedirects: false, fetch, poolSize: d.poolSize, privateNetworks });

  // robots.txt is fetched over HTTP, through the proxies when there are some
  const robotsHttp = (fetch?: typeof globalThis.fetch) =>
    new HttpClient({ userAgent: config.crawler.userAgent, maxBodyBytes: ROBOTS_MAX_BYTES, truncateBody: true, maxRedirects: 5, fetch, privateNetworks });
  const robotsClient: Downloader = new ProxiedDownloader(proxies, robotsHttp(), (url) => robotsHttp(proxyFetch(url)));
  const locks: LockService = redis ? new RedisLockService(redis, config.name, (lock) => emit({ type: "lock_lost", lock })) : new MemoryLockService();
  const robots = new RobotsTxt({
    userAgent: config.crawler.userAgent,
    cache,
    locks,
    ttlMs: options.robotsTtlMs,
    unavailableMs: options.robotsUnavailableMs,
    fetch: async (url, from) => {
      try {
        // with the module and the crawl's named hosts of the request that needs it (private networks)
        const res = await robotsClient.fetch(request({ url, module: from?.module ?? "", meta: metaData({ task: from?.meta.task ?? null }), timeout: Math.min(d.timeout, ROBOTS_TIMEOUT_SECS) }));
        return { status: res.statusCode, body: new TextDecoder().decode(res.content) };
      } catch (err) {
        // more than 5 redirects: RFC 9309 §2.3.1.2 lets us take the file as unavailable (= no restrictions)
        if (err instanceof DownloadError && !err.retryable) return { unusable: err.message };
        throw err;
      }
    },
    onUnavailable: (origin, reason, retryMs) => emit({ type: "robots_unavailable", origin, reason, retryMs }),
  });

  const built = new Map<Downloader, Map<ModuleLookup | undefined, PoliteStages>>();

  const kit: PolitenessKit = {
    limiter,
    concurrency,
    politeness,
    robots,
    proxies,
    cache,
    sessions,
    locks,
    distributed: redis !== undefined,
    setEvents(events: EventBus) {
      bus = events;
    },
    async close() {
      await locks.close().catch(() => {});
      await closeProxyTransports();
    },
    stages(base: Downloader, modules?: ModuleLookup): PoliteStages {
      let byModules = built.get(base);
      if (!byModules) {
        byModules = new Map();
        built.set(base, byModules);
      }
      const have = byModules.get(modules);
      if (have) return have;

      const settingsOf = (req: Request): ModuleSettings | undefined => (req.module && modules?.has(req.module) ? modules.settings(req.module) : undefined);
      const settings: GateSettings = {
        keyMode: d.rateLimitKey,
        rateOf(req, key) {
          if (!d.enableRateLimit) return 0;
          if (Object.hasOwn(config.rateLimits, key)) return config.rateLimits[key];
          const own = settingsOf(req)?.rateLimit;
          return typeof own === "number" && own > 0 ? own : d.rateLimit;
        },
        obeyRobots(req) {
          const own = settingsOf(req)?.obeyRobotsTxt;
          return typeof own === "boolean" ? own : config.crawler.obeyRobotsTxt;
        },
        domainConcurrency: d.domainConcurrency,
        maxWaitMs: d.maxWaitMs,
        proxyRate: d.proxyRateLimit,
        leaseMs: (req) => Math.ceil((req.timeout > 0 ? req.timeout : d.timeout) * 1000) + LEASE_MARGIN_MS,
      };

      const proxied = new ProxiedDownloader(proxies, new SessionDownloader(base, sessions), (url) => new SessionDownloader(httpClient(proxyFetch(url)), sessions));
      const cacheOn = (req: Request) => d.enableCache || req.enableCache;
      // A cache hit is looked up before the gate (it needs no slot) and served by the same
      // CachingDownloader, which sits outside the feedback layer.
      let downloader: CachingDownloader | undefined;
      const gate = new RequestGate(
        { limiter, concurrency, politeness, robots, proxies, cacheLookup: (req) => (cacheOn(req) && downloader ? downloader.lookup(req) : Promise.resolve(false)) },
        settings,
      );
      gate.emit = emit;
      downloader = new CachingDownloader(new FeedbackDownloader(proxied, gate), cache, { ttlMs: d.cacheTtl * 1000, enabled: cacheOn, emit });
      const stages = { gate, downloader };
      byModules.set(modules, stages);
      return stages;
    },
  };
  return kit;
}
