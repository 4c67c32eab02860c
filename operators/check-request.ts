import type { OperatorFunction } from "rxjs";
import type { Request } from "../src/model/index.ts";
import { impossibleHost } from "../src/url/canonical.ts";
import { type Job, mapJob, StageError } from "./job.ts";

/** Why a queued request can never be crawled, or undefined. */
function uncrawlableReason(req: Request, hasModule: (name: string) => boolean): string | undefined {
  if (req.module && !hasModule(req.module)) return `unknown module ${JSON.stringify(req.module)}: no module of that name on this worker`;
  let u: URL;
  try {
    u = new URL(req.url);
  } catch {
    return `bad URL ${JSON.stringify(req.url.slice(0, 200))}: not a URL`;
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") return `bad URL ${JSON.stringify(req.url.slice(0, 200))}: not http(s)`;
  const host = impossibleHost(u.hostname);
  return host ? `bad URL ${JSON.stringify(req.url.slice(0, 200))}: ${host}` : undefined;
}

/**
 * The first stage of the request flow: a request that can never be crawled (a module no worker
 * has, a non-http(s) or malformed URL, a host that cannot exist: e.g. a message from another
 * producer) goes to the dead letters with that reason, before robots.txt or the downloader see
 * it, so it neither waits out a robots.txt hold nor spends retries.
 */
export function checkRequest(hasModule: (name: string) => boolean): OperatorFunction<Job<Request>, Job<Request>> {
  return mapJob("check", (req: Request) => {
    const reason = uncrawlableReason(req, hasModule);
    if (reason) throw new StageError({ stage: "check", reason, retryable: false, url: req.url });
    return req;
  });
}
