import type { OperatorFunction } from "rxjs";
import type { CrawlBounds } from "../src/bounds/bounds.ts";
import type { Request } from "../src/model/index.ts";
import { type Job, mapJob, StageError } from "./job.ts";

/**
 * The run's request budget, checked right before download (after politeness, so a request that
 * is deferred or forbidden by robots.txt spends nothing): a request whose run has spent
 * max_requests or max_items is dropped (acked, never sent). `onRefused` releases what the
 * politeness stage gave the request (its concurrency lease).
 */
export function budget(bounds: CrawlBounds, options: { onRefused?: (req: Request) => Promise<void> } = {}): OperatorFunction<Job<Request>, Job<Request>> {
  return mapJob("budget", async (req: Request) => {
    if (await bounds.admit(req)) return req;
    await options.onRefused?.(req);
    throw new StageError({ stage: "budget", reason: "the run's budget is spent", retryable: false, drop: true, url: req.url });
  });
}
