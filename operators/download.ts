import type { OperatorFunction } from "rxjs";
import { isFromCache } from "../src/cache/response-cache.ts";
import { DownloadError, parseRetryAfter, RETRYABLE_STATUSES } from "../src/download/download-error.ts";
import type { EventBus } from "../src/events/bus.ts";
import { MiddlewareError, type MiddlewareChains } from "../src/middleware/chains.ts";
import { RetryRequest } from "../src/middleware/types.ts";
import { fingerprint, type Request, type Response } from "../src/model/index.ts";
import { type Job, mapJob, StageError } from "./job.ts";

/** Something that turns a Request into a Response (HttpClient, a cache in front of it, ...). */
export interface Downloader {
  fetch(req: Request): Promise<Response>;
}

/** A downloaded page on its way to parse(). */
export interface Fetched {
  response: Response;
  /** the Request's fingerprint: items are keyed by it */
  fingerprint: string;
  url: string;
}

export interface DownloadOptions {
  /** downloads in flight at once */
  concurrency: number;
  /** error statuses to hand to parse() anyway (default: none; 2xx/3xx always pass) */
  acceptStatus?: (req: Request, status: number) => boolean;
  events?: EventBus;
  /** download middleware (before the request is sent, after its response arrives) */
  middleware?: MiddlewareChains;
}

/**
 * Request → Response. Throttling and transient statuses (429, 5xx) and network errors fail the
 * message as retryable (with the server's Retry-After); other error statuses (404, ...) are
 * dropped with an `http_error` event unless `acceptStatus` takes them.
 */
export function download(client: Downloader, options: DownloadOptions): OperatorFunction<Job<Request>, Job<Fetched>> {
  const { events } = options;
  const chains = options.middleware?.anyDownload ? options.middleware : undefined;
  return mapJob(
    "download",
    async (sent: Request, message): Promise<Fetched> => {
      const chain = chains?.of(sent.module).download;
      let req = sent;
      if (chain) {
        const before = await runMiddleware(() => chain.beforeRequest(sent), sent, events);
        if ("skippedBy" in before) return skipped(before.skippedBy, sent, "before_request", events);
        req = before;
      }
      events?.emit({ type: "request_sent", url: req.url, module: req.module, attempt: message.delivery.attempt });
      const started = performance.now();
      let response: Response;
      try {
        response = await client.fetch(req);
      } catch (err) {
        if (err instanceof DownloadError) {
          throw new StageError({ stage: "download", reason: err.message, retryable: err.retryable, retryAfterMs: err.retryAfterMs, url: req.url });
        }
        throw err;
      }
      if (chain) {
        const after = await runMiddleware(() => chain.afterResponse(response, req), req, events);
        if ("droppedBy" in after) return skipped(after.droppedBy, req, "after_response", events);
        response = after;
      }
      const status = response.statusCode;
      const fp = fingerprint(sent); // as queued: middleware changes (user agent, ...) do not re-key the items
      response.requestHash = fp;
      if (events?.observed) {
        events.emit({
          type: "response_received",
          url: req.url,
          module: req.module,
          status,
          bytes: response.content.byteLength,
          ms: performance.now() - started,
          fromCache: isFromCache(response),
        });
      }
      if (status >= 400 && !options.acceptStatus?.(req, status)) {
        if (RETRYABLE_STATUSES.has(status)) {
          const retryAfter = response.headers.find(([k]) => k === "retry-after")?.[1];
          throw new StageError({ stage: "download", reason: `HTTP ${status}`, retryable: true, retryAfterMs: parseRetryAfter(retryAfter), url: req.url });
        }
        events?.emit({ type: "http_error", url: req.url, module: req.module, status });
        throw new StageError({ stage: "download", reason: `HTTP ${status}`, retryable: false, drop: true, url: req.url });
      }
      return { response, fingerprint: fp, url: req.url };
    },
    options.concurrency,
  );
}

/** A middleware's RetryRequest becomes a retry, any other exception a dead letter (with an event). */
async function runMiddleware<T>(run: () => Promise<T>, req: Request, events: EventBus | undefined): Promise<T> {
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

function skipped(middleware: string, req: Request, stage: "before_request" | "after_response", events: EventBus | undefined): never {
  events?.emit({ type: "request_skipped", module: req.module, middleware, url: req.url, stage });
  throw new StageError({ stage: "download", reason: `skipped by middleware ${middleware}`, retryable: false, drop: true, url: req.url });
}
