import type { OperatorFunction } from "rxjs";
import type { EventBus } from "../src/events/bus.ts";
import { MiddlewareError, type MiddlewareChains } from "../src/middleware/chains.ts";
import { RetryRequest } from "../src/modules/middleware.ts";
import type { Request } from "../src/model/index.ts";
import { type Job, mapJob, StageError } from "./job.ts";

/**
 * Download middleware, before the request is sent: runs each module's `beforeRequest` chain
 * (weight order) on a copy of the queued request, in front of politeness() so that robots.txt,
 * rate limits and leases see the request as it will be sent. A skipped request is acked with a
 * `request_skipped` event; `RetryRequest` retries it; any other exception dead-letters it.
 */
export function requestMiddleware(chains: MiddlewareChains, options: { events?: EventBus } = {}): OperatorFunction<Job<Request>, Job<Request>> {
  const { events } = options;
  return mapJob("download_middleware", async (queued: Request): Promise<Request> => {
    const chain = chains.of(queued.module).download;
    if (!chain) return queued;
    // a copy: what a middleware changes is sent, not written back into the queued message
    const out = await guardMiddleware(() => chain.beforeRequest({ ...queued, headers: [...queued.headers] }), queued, events);
    if ("skippedBy" in out) return skipRequest(out.skippedBy, queued, "before_request", events);
    return out;
  });
}

/** A middleware's RetryRequest becomes a retry, any other exception a dead letter (with an event). */
export async function guardMiddleware<T>(run: () => Promise<T>, req: Request, events: EventBus | undefined): Promise<T> {
  try {
    return await run();
  } catch (err) {
    if (err instanceof RetryRequest) {
      throw new StageError({ stage: "download", reason: err.message, retryable: true, retryAfterMs: err.delayMs, url: req.url });
    }
    if (err instanceof MiddlewareError) {
      events?.emit({ type: "middleware_error", chain: "download", middleware: err.middleware, module: req.module, message: err.message, url: req.url });
      throw new StageError({ stage: "download", reason: err.message, retryable: false, url: req.url });
    }
    throw err;
  }
}

/** Acks a request a middleware skipped (or whose response it dropped), with an event. */
export function skipRequest(middleware: string, req: Request, stage: "before_request" | "after_response", events: EventBus | undefined): never {
  events?.emit({ type: "request_skipped", module: req.module, middleware, url: req.url, stage });
  throw new StageError({ stage: "download", reason: `skipped by middleware ${middleware}`, retryable: false, drop: true, url: req.url });
}
