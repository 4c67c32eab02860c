/**
 * Redirects go through the engine (as Scrapy's RedirectMiddleware does): the HTTP client returns
 * a 3xx as it is, and the download stage turns it into a new Request for the Location. That
 * request is enqueued like any follow-up, so every hop passes the same gate as a link: the scheme
 * and host check, the module's allowed domains (here), dedup in the enqueue script (a redirect to
 * a page already crawled or queued yields nothing new, across all workers), then robots.txt and
 * the rate limit when it is dequeued. The chain travels in the request (`meta.task.redirect`), so
 * a loop or a chain over `max_redirects` is caught on whichever worker sees it.
 */
import { type CookieItem, domainMatches, type JsonValue, type Request, type Response, uuidv7 } from "../model/index.ts";
import { canonicalizeUrl, impossibleHost, type UrlRules } from "../url/canonical.ts";
import { isAllowedDomain } from "../url/link-rules.ts";

/** What the engine does with a 3xx. */
export type RedirectDecision =
  | { kind: "follow"; request: Request }
  /** not crawlable (bad scheme or host, outside allowed domains): ack and count */
  | { kind: "drop"; reason: string }
  /** a loop or too many hops: dead-letter with this reason */
  | { kind: "dead"; reason: string };

/** Where a redirected request came from: kept in `meta.task.redirect`. */
export interface RedirectTrail {
  /** the URL the module asked for */
  from: string;
  /** every URL fetched before this one, in order */
  chain: string[];
}

/** The trail of a request (undefined when it is not the target of a redirect). */
export function redirectTrail(meta: { task: JsonValue }): RedirectTrail | undefined {
  const t = meta.task;
  if (t === null || typeof t !== "object" || Array.isArray(t)) return undefined;
  const r = t.redirect;
  if (r === null || typeof r !== "object" || Array.isArray(r) || typeof r.from !== "string" || !Array.isArray(r.chain)) return undefined;
  return { from: r.from, chain: r.chain.filter((x): x is string => typeof x === "string") };
}

function withTrail(task: JsonValue, trail: RedirectTrail): JsonValue {
  const base = task !== null && typeof task === "object" && !Array.isArray(task) ? task : {};
  return { ...base, redirect: { from: trail.from, chain: trail.chain } };
}

export interface RedirectOptions {
  maxRedirects: number;
  urlRules: UrlRules;
  allowedDomains?: readonly string[];
}

/** Decides what to do with `res`, a 3xx answer to `req` carrying `location`. */
export function decideRedirect(req: Request, res: Response, location: string, o: RedirectOptions): RedirectDecision {
  let target: URL;
  try {
    target = new URL(location, req.url);
  } catch {
    return { kind: "drop", reason: `redirect to a malformed Location ${JSON.stringify(location.slice(0, 200))} from ${req.url}` };
  }
  if (target.protocol !== "http:" && target.protocol !== "https:") return { kind: "drop", reason: `redirect to a non-http(s) URL from ${req.url}` };
  const bad = impossibleHost(target.hostname);
  if (bad) return { kind: "drop", reason: `redirect from ${req.url}: ${bad}` };
  const url = canonicalizeUrl(target.href, o.urlRules);
  if (!isAllowedDomain(url, o.allowedDomains)) {
    return { kind: "drop", reason: `redirect outside allowed domains: ${url}` };
  }
  const previous = redirectTrail(req.meta);
  const chain = [...(previous?.chain ?? []), req.url];
  if (chain.includes(url)) return { kind: "dead", reason: `redirect loop: ${[...chain, url].join(" -> ")}` };
  if (chain.length > o.maxRedirects) {
    return { kind: "dead", reason: `too many redirects (more than ${o.maxRedirects}): ${[...chain, url].join(" -> ")}` };
  }

  const status = res.statusCode;
  const keepMethod = status === 307 || status === 308 || (req.method !== "POST" && status !== 303) || req.method === "HEAD";
  const host = target.hostname.toLowerCase();
  // cookies set on the 3xx go with the next hop (the module's jar keeps them too: SessionDownloader)
  const cookies: CookieItem[] = [...req.cookies];
  for (const c of res.cookies) {
    if (!domainMatches(host, c.domain)) continue;
    const i = cookies.findIndex((x) => x.name === c.name);
    if (i >= 0) cookies.splice(i, 1);
    cookies.push(c);
  }
  return {
    kind: "follow",
    request: {
      ...req,
      id: uuidv7(),
      url,
      method: keepMethod ? req.method : "GET",
      body: keepMethod ? req.body : null,
      json: keepMethod ? req.json : undefined,
      form: keepMethod ? req.form : undefined,
      headers: keepMethod ? req.headers : req.headers.filter((h) => h.key.toLowerCase() !== "content-type"),
      cookies,
      retryTimes: 0,
      meta: { ...req.meta, task: withTrail(req.meta.task, { from: previous?.from ?? req.url, chain }) },
      prefixRequest: req.id,
      // a request made with dedup: false stays undeduplicated through its redirects
      hashStr: req.hashStr !== null ? uuidv7() : null,
    },
  };
}
