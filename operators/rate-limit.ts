import type { OperatorFunction } from "rxjs";
import type { EventBus } from "../src/events/bus.ts";
import type { Request } from "../src/model/index.ts";
import type { RateLimiter } from "../src/ratelimit/limiter.ts";
import { type Job, mapJob, StageError } from "./job.ts";

export interface RateLimitOptions {
  /** requests per second for this request's key (0 = unlimited) */
  rateOf: (req: Request) => number;
  /** the limiter key; default: the request's host */
  keyOf?: (req: Request) => string;
  /** a wait longer than this re-queues the request with that delay instead of holding a slot */
  maxWaitMs: number;
  events?: EventBus;
}

export const byHost = (req: Request): string => {
  const start = req.url.indexOf("//") + 2;
  const end = req.url.indexOf("/", start);
  return req.url.slice(start, end < 0 ? undefined : end).toLowerCase();
};

/** Delays each request until its key's next evenly spaced slot (GCRA); never polls. */
export function rateLimit(limiter: RateLimiter, options: RateLimitOptions): OperatorFunction<Job<Request>, Job<Request>> {
  const keyOf = options.keyOf ?? byHost;
  return mapJob("rate_limit", async (req: Request) => {
    const rate = options.rateOf(req);
    if (!(rate > 0)) return req;
    const key = keyOf(req);
    const r = await limiter.reserve(key, rate, options.maxWaitMs);
    if (!r.ok) {
      throw new StageError({ stage: "rate_limit", reason: `rate limit wait for ${key} over max_wait`, retryable: true, retryAfterMs: r.retryAfterMs, url: req.url, requeue: true });
    }
    if (r.waitMs > 0) {
      options.events?.emit({ type: "rate_limited", key, waitMs: r.waitMs });
      await new Promise((resolve) => setTimeout(resolve, r.waitMs));
    }
    return req;
  });
}
