import type { OperatorFunction } from "rxjs";
import { isFromCache } from "../src/download/response-cache.ts";
import { DownloadError, parseRetryAfter, RETRYABLE_STATUSES } from "../src/download/download-error.ts";
import type { RedirectDecision } from "../src/download/redirects.ts";
import { headerValue } from "../src/runtime/transport.ts";
import type { Downloader, Fetched } from "../src/download/downloader.ts";
import type { EventBus } from "../src/events/bus.ts";
import type { MiddlewareChains } from "../src/middleware/chains.ts";
import { fingerprint, type Request, type Response } from "../src/model/index.ts";
import { hostOf as hostOfUrl } from "../src/url/link-rules.ts";
import { type Job, mapJob, StageError } from "./job.ts";
import { guardMiddleware, skipRequest } from "./request-middleware.ts";

export type { Downloader, Fetched } from "../src/download/downloader.ts";

export interface DownloadOptions {
  /** downloads in flight at once */
  concurrency: number;
  /** error statuses to hand to parse() anyway (default: none; 2xx/3xx always pass) */
  acceptStatus?: (req: Request, status: number) => boolean;
  events?: EventBus;
  /** download middleware's `afterResponse` (its `beforeRequest` runs in requestMiddleware()) */
  middleware?: MiddlewareChains;
  /**
   * what to do with a 3xx that has a Location (default: hand it to parse() as it is); see
   * src/download/redirects.ts
   */
  redirect?: (req: Request, response: Response, location: string) => RedirectDecision;
}

/**
 * Request → Response. Throttling and transient statuses (429, 5xx) and network errors fail the
 * message as retryable (with the server's Retry-After; a 429 with Retry-After is deferred, not
 * counted as an attempt); other error statuses (404, ...) are dropped with an `http_error` event
 * unless `acceptStatus` takes them. With `redirect`, a 3xx becomes a request for its Location
 * (`Fetched.redirect`), is dropped, or is dead-lettered (a loop, too many hops).
 */
export function download(client: Downloader, options: DownloadOptions): OperatorFunction<Job<Request>, Job<Fetched>> {
  const { events } = options;
  const chains = options.middleware?.anyDownload ? options.middleware : undefined;
  return mapJob(
    "download",
    async (req: Request, message): Promise<Fetched> => {
      if (events?.wants("request_sent")) events.emit({ type: "request_sent", url: req.url, module: req.module, attempt: message.delivery.attempt });
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
      const chain = chains?.of(req.module).download;
      if (chain) {
        const after = await guardMiddleware(() => chain.afterResponse(response, req), req, events);
        if ("droppedBy" in after) return skipRequest(after.droppedBy, req, "after_response", events);
        response = after;
      }
      const status = response.statusCode;
      const fp = fingerprint(req);
      response.requestHash = fp;
      if (events?.wants("response_received")) {
        events.emit({
          type: "response_received",
          url: req.url,
          module: req.module,
          status,
          bytes: response.content.byteLength,
          ms: performance.now() - started,
          fromCache: isFromCache(response),
          runId: req.runId,
        });
      }
      if (status >= 400 && !options.acceptStatus?.(req, status)) {
        if (RETRYABLE_STATUSES.has(status)) {
          const retryAfterMs = parseRetryAfter(response.headers.find(([k]) => k === "retry-after")?.[1]);
          // 429 + Retry-After is the server scheduling us, not a failure of the page: deferred
          const requeue = status === 429 && retryAfterMs !== undefined;
          throw new StageError({ stage: "download", reason: `HTTP ${status}`, retryable: true, retryAfterMs, url: req.url, requeue });
        }
        events?.emit({ type: "http_error", url: req.url, module: req.module, status, runId: req.runId });
        throw new StageError({ stage: "download", reason: `HTTP ${status}`, retryable: false, drop: true, url: req.url });
      }
      const location = status >= 300 && status < 400 && options.redirect ? headerValue(response.headers, "location") : undefined;
      if (location !== undefined && options.redirect && !options.acceptStatus?.(req, status)) {
        const d = options.redirect(req, response, location);
        if (d.kind === "drop") {
          events?.emit({ type: "links_dropped", module: req.module, domain: hostOfUrl(req.url), reason: "redirect not followed", count: 1, example: d.reason });
          throw new StageError({ stage: "redirect", reason: d.reason, retryable: false, drop: true, url: req.url });
        }
        if (d.kind === "dead") throw new StageError({ stage: "redirect", reason: d.reason, retryable: false, url: req.url });
        events?.emit({ type: "redirected", from: req.url, to: d.request.url, status, module: req.module });
        return { response, fingerprint: fp, url: req.url, redirect: d.request };
      }
      return { response, fingerprint: fp, url: req.url };
    },
    options.concurrency,
  );
}

