// src/ratelimit/gate.ts: the politeness gate every request passes before it is downloaded, and
// the feedback from its download.
//
//   response cache hit? ─yes─▶ (no gate: served from the cache)
//   robots.txt ── disallowed ─▶ ack + robots_disallowed        (never requested)
//             └─ unreadable ──▶ defer until the robots back-off ends  (no attempt spent)
//   suspended / circuit open ─▶ defer until the suspension ends    (no attempt spent, no slot held)
//   GCRA reservation at rate x adaptive factor, Crawl-delay as a floor on the interval
//             └─ wait > max_wait ─▶ re-queue after that wait (nothing reserved)
//   sleep the reserved wait
//   concurrency lease (domain_concurrency, shared) ── none within max_wait ─▶ re-queue
//             └─ had to wait for it ─▶ a fresh slot (and its sleep), so the spacing holds
//   waited? suspended meanwhile? ─▶ re-queue
//   download ─▶ feedback (status/errors) ─▶ release the lease
import type { RateLimitKeyMode } from "../config/schema.ts";
import { DownloadError, parseRetryAfter } from "../download/download-error.ts";
import type { ProxyPool } from "../download/proxy-pool.ts";
import type { RobotsTxt } from "../download/robots.ts";
import type { CrawlEvent } from "../events/events.ts";
import type { Request, Response } from "../model/index.ts";
import type { Downloader } from "../download/downloader.ts";
import type { Failure } from "../queue/failure.ts";
import type { ConcurrencyLimiter, Lease } from "./concurrency.ts";
import { rateLimitKey, siteKey } from "./keys.ts";
import type { RateLimiter } from "./limiter.ts";
import type { Outcome, Politeness } from "./politeness.ts";

export interface GateSettings {
  keyMode: RateLimitKeyMode;
  /** the configured rate of this request's key, req/s (0 = unlimited), before adaptation */
  rateOf(req: Request, key: string): number;
  /** whether this request obeys robots.txt */
  obeyRobots(req: Request): boolean;
  /** requests in flight per domain, all workers together; 0 = no cap */
  domainConcurrency: number;
  /** longest wait for a lease or a rate slot, ms; longer = re-queue */
  maxWaitMs: number;
  /** default requests per second through each proxy (0 = unlimited) */
  proxyRate: number;
  /** how long a concurrency lease lives without renewal, ms */
  leaseMs(req: Request): number;
}

export interface GateParts {
  limiter: RateLimiter;
  concurrency: ConcurrencyLimiter;
  politeness: Politeness;
  robots?: RobotsTxt;
  proxies?: ProxyPool;
  /** ask the response cache first: a hit passes without a slot */
  cacheLookup?: (req: Request) => Promise<boolean>;
}

/** What an admitted request holds until its download is over. */
export interface Permit {
  key: string;
  /** configured rate of the key (for feedback events) */
  rate: number;
  lease?: Lease;
}

export type Admission = { ok: true } | { ok: false; failure: Failure };

const jitter = (ms: number) => Math.floor(Math.random() * ms);

/** A refusal of the politeness stage for `req`. */
function refused(req: Request, f: Omit<Failure, "stage" | "url">): Admission {
  return { ok: false, failure: { stage: "politeness", url: req.url, ...f } };
}

export class RequestGate {
  private readonly permits = new WeakMap<Request, Permit>();
  emit: (event: CrawlEvent) => void = () => {};

  constructor(
    readonly parts: GateParts,
    readonly settings: GateSettings,
  ) {}

  /** Whether the request may go now (after the waits it took); on ok it holds a Permit. */
  async admit(req: Request): Promise<Admission> {
    const { parts, settings } = this;
    let lease: Lease | undefined;
    try {
      if (parts.cacheLookup && (await parts.cacheLookup(req))) return { ok: true };

      let crawlDelaySecs: number | undefined;
      if (parts.robots && settings.obeyRobots(req)) {
        const v = await parts.robots.check(req.url);
        if (!v.allowed) {
          if (!v.unavailable) {
            this.emit({ type: "robots_disallowed", url: req.url, module: req.module });
            return refused(req, { reason: "disallowed by robots.txt", retryable: false, drop: true });
          }
          return refused(req, { reason: v.reason, retryable: true, requeue: true, retryAfterMs: v.retryAfterMs + jitter(250) });
        }
        crawlDelaySecs = v.crawlDelaySecs;
      }

      const proxy = parts.proxies?.assign(req);
      const key = rateLimitKey(req, settings.keyMode, proxy?.hostPort);
      const state = await parts.politeness.state(key);
      if (state.suspendedMs > 0) {
        return refused(req, { reason: `${key} is held back for ${Math.ceil(state.suspendedMs)} ms`, retryable: true, requeue: true, retryAfterMs: Math.ceil(state.suspendedMs) + jitter(50) });
      }

      const configured = settings.rateOf(req, key);
      let rate = configured > 0 ? configured * state.factor : Infinity;
      if (crawlDelaySecs !== undefined && crawlDelaySecs > 0) rate = Math.min(rate, 1 / crawlDelaySecs);
      const proxyRate = proxy ? (proxy.rateLimit > 0 ? proxy.rateLimit : settings.proxyRate) : 0;
      const proxyKey = proxy ? `proxy:${proxy.hostPort}` : "";

      // The rate slot comes first and the concurrency lease after it, so a request sleeping for
      // its slot (say, on one proxy's rate) holds no lease that other keys' requests wait for. A
      // request that then had to wait for a lease takes a fresh slot, so it cannot go out right
      // behind another: the spacing holds either way.
      const started = Date.now();
      const first = await this.slot(req, key, rate, proxyKey, proxyRate);
      if (first) return first;
      if (settings.domainConcurrency > 0) {
        const got = await parts.concurrency.acquire(siteKey(req.url), settings.domainConcurrency, { leaseMs: settings.leaseMs(req), maxWaitMs: settings.maxWaitMs });
        if (!got) {
          return refused(req, { reason: `no concurrency slot for ${siteKey(req.url)} within ${settings.maxWaitMs} ms`, retryable: true, requeue: true, retryAfterMs: 500 + jitter(500) });
        }
        lease = got;
        if (got.waited && (rate !== Infinity || proxyRate > 0)) {
          const again = await this.slot(req, key, rate, proxyKey, proxyRate);
          if (again) {
            await lease.release();
            lease = undefined;
            return again;
          }
        }
      }
      // a request that waited (for a rate slot or a lease) looks at the key again before it goes:
      // an earlier request's 429 may have suspended it meanwhile
      if (Date.now() - started > 1) {
        const after = await parts.politeness.state(key);
        if (after.suspendedMs > 0) {
          await lease?.release();
          lease = undefined;
          return refused(req, { reason: `${key} is held back for ${Math.ceil(after.suspendedMs)} ms`, retryable: true, requeue: true, retryAfterMs: Math.ceil(after.suspendedMs) + jitter(50) });
        }
      }
      this.permits.set(req, { key, rate: configured, lease });
      return { ok: true };
    } catch (err) {
      await lease?.release().catch(() => {});
      return refused(req, { reason: `politeness check failed: ${err instanceof Error ? err.message : String(err)}`, retryable: true, retryAfterMs: 1000 });
    }
  }

  /**
   * Reserves the key's (and the proxy's) next slot and sleeps until it; a failure when over
   * max_wait. A method, not a closure in admit(): nothing is allocated per request for it.
   */
  private async slot(req: Request, key: string, rate: number, proxyKey: string, proxyRate: number): Promise<Admission | undefined> {
    const { parts, settings } = this;
    let waitMs = 0;
    if (rate !== Infinity) {
      const r = await parts.limiter.reserve(key, rate, settings.maxWaitMs);
      if (!r.ok) return refused(req, { reason: `rate limit wait for ${key} over max_wait`, retryable: true, requeue: true, retryAfterMs: r.retryAfterMs });
      waitMs = r.waitMs;
    }
    if (proxyRate > 0 && proxyKey !== key) {
      const r = await parts.limiter.reserve(proxyKey, proxyRate, settings.maxWaitMs);
      if (!r.ok) return refused(req, { reason: `rate limit wait for ${proxyKey} over max_wait`, retryable: true, requeue: true, retryAfterMs: r.retryAfterMs });
      waitMs = Math.max(waitMs, r.waitMs);
    }
    if (waitMs > 0) {
      this.emit({ type: "rate_limited", key, waitMs });
      await new Promise((resolve) => setTimeout(resolve, waitMs));
    }
    return undefined;
  }

  permitOf(req: Request): Permit | undefined {
    return this.permits.get(req);
  }

  /** Feeds the outcome of an admitted request back and releases its lease. */
  async finish(req: Request, outcome: Outcome | undefined): Promise<void> {
    const permit = this.permits.get(req);
    if (!permit) return;
    this.permits.delete(req);
    try {
      if (outcome) await this.parts.politeness.report(permit.key, outcome, permit.rate);
    } catch {
      // feedback is best effort
    } finally {
      await permit.lease?.release().catch(() => {});
    }
  }
}

/** The outcome of a download as politeness sees it. */
export function outcomeOf(res: Response): Outcome {
  const retryAfter = res.headers.find(([k]) => k === "retry-after")?.[1];
  return { kind: "response", status: res.statusCode, retryAfterMs: parseRetryAfter(retryAfter) };
}

/**
 * A Downloader decorator: reports each admitted request's outcome to the gate (status and
 * Retry-After; a network error or timeout counts towards the circuit) and releases its lease.
 */
export class FeedbackDownloader implements Downloader {
  constructor(
    private readonly inner: Downloader,
    private readonly gate: RequestGate,
  ) {}

  async fetch(req: Request): Promise<Response> {
    if (!this.gate.permitOf(req)) return this.inner.fetch(req);
    let outcome: Outcome | undefined;
    try {
      const res = await this.inner.fetch(req);
      outcome = outcomeOf(res);
      return res;
    } catch (err) {
      if (err instanceof DownloadError && err.retryable && err.status === undefined) outcome = { kind: "failure", reason: err.message };
      throw err;
    } finally {
      await this.gate.finish(req, outcome);
    }
  }
}
