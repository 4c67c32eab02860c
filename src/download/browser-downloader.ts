// src/download/browser-downloader.ts: a Downloader that renders pages in headless Chromium when
// their request (or module) asks for it, behind the same contract as HttpClient.
//
// The document itself is fetched by the HTTP downloader underneath — the request the engine
// gated (robots.txt, politeness, budgets), with the session's cookies, the body cap and the
// deadline — and handed to Chromium with route.fulfill(); Chromium then runs the page's scripts,
// fetching their sub-resources itself. So a rendered page costs exactly one document request,
// a 3xx comes back to the engine as it is (its Location goes through the gate like any
// redirect), and "auto" never fetches a document twice: the HTTP body that failed the check is
// the one rendered.
import type { Page as LivePage } from "playwright-core";
import { bodyKind } from "../content/content-type.ts";
import { type CookieItem, cookie, type Request, type Response, responseFor, URL_HEADER } from "../model/index.ts";
import { BrowserCrashed, type BrowserPool, BrowserUnavailable, errorText } from "./browser-pool.ts";
import { DownloadError } from "./download-error.ts";
import type { Downloader } from "./downloader.ts";
import { checkResolvedHost, mustCheckAddresses, namedHostsOf, type PrivateNetworkPolicy } from "./private-network.ts";
import { type RenderMode, type RenderWait, requestRender } from "../model/index.ts";
import { RenderMemory } from "./render.ts";

/** A response header saying how the body was made: "browser" for a rendered page. */
export const RENDERED_HEADER = "x-mocra-rendered";

/** How one request is rendered (from its own `downloader`, else its module's settings). */
export interface RenderPlan {
  mode: RenderMode;
  wait?: RenderWait;
  /** acts on the live page after the wait, before the DOM is taken (scroll, click "load more") */
  hook?: (page: LivePage, req: Request) => Promise<void>;
  /** "auto": does this HTTP response need a render? */
  needsBrowser?: (req: Request, res: Response) => boolean;
}

export interface BrowserDownloaderOptions {
  /** the module's render settings for a request whose `downloader` does not decide */
  planOf: (req: Request) => RenderPlan;
  /** renders are attempted this often when the browser dies under a page (default 2) */
  crashAttempts?: number;
  /** told about each render (counts, timings) */
  onRender?: (info: RenderInfo) => void;
  memory?: RenderMemory;
  /** private networks are opt-in for what the page fetches itself too (as for the document) */
  privateNetworks?: PrivateNetworkPolicy;
}

export interface RenderInfo {
  url: string;
  module: string;
  ms: number;
  subresources: number;
  /** "auto" rendered it without checking (the pattern is known to need a browser) */
  learned: boolean;
  /** browser crashes survived by this page */
  crashes: number;
}

const encoder = new TextEncoder();

/** HTTP response headers not handed to Chromium with the document (the body is already decoded). */
const HOP_HEADERS = new Set(["content-encoding", "content-length", "transfer-encoding", "connection", "keep-alive", URL_HEADER]);

export class BrowserDownloader implements Downloader {
  readonly memory: RenderMemory;
  private readonly counters = { rendered: 0, httpOnly: 0, learned: 0, crashRetries: 0 };

  constructor(
    private readonly http: Downloader,
    private readonly pool: BrowserPool,
    private readonly options: BrowserDownloaderOptions,
  ) {
    this.memory = options.memory ?? new RenderMemory();
  }

  /** rendered pages, pages "auto" left to HTTP, renders "auto" did without the check, renders retried after a crash */
  stats(): { rendered: number; httpOnly: number; learned: number; crashRetries: number } {
    return { ...this.counters };
  }

  async fetch(req: Request): Promise<Response> {
    const plan = this.plan(req);
    if (plan.mode === "http") return this.http.fetch(req);
    const started = Date.now();
    const learned = plan.mode === "auto" && this.memory.knownToNeedBrowser(req.url);
    const doc = await this.http.fetch(req);
    // errors, redirects and non-HTML bodies are the engine's business, as over HTTP
    if (doc.statusCode < 200 || doc.statusCode >= 300 || bodyKind(header(doc, "content-type"), doc.content) !== "html") return doc;
    if (plan.mode === "auto" && !learned) {
      const needs = plan.needsBrowser ? plan.needsBrowser(req, doc) : true;
      this.memory.record(req.url, needs);
      if (!needs) {
        this.counters.httpOnly++;
        return doc;
      }
    }
    if (learned) this.counters.learned++;
    return this.render(req, doc, plan, started, learned);
  }

  private plan(req: Request): RenderPlan {
    const own = requestRender(req);
    const module = this.options.planOf(req);
    if (!own) return module;
    return { ...module, mode: own.mode, wait: own.wait ?? module.wait };
  }

  private async render(req: Request, doc: Response, plan: RenderPlan, started: number, learned: boolean): Promise<Response> {
    const deadline = started + Math.max(1, req.timeout) * 1000;
    const attempts = this.options.crashAttempts ?? 2;
    for (let crashes = 0; ; crashes++) {
      try {
        const res = await this.renderOnce(req, doc, plan, deadline);
        this.counters.rendered++;
        this.options.onRender?.({ url: req.url, module: req.module, ms: Date.now() - started, subresources: res.subresources, learned, crashes });
        return res.response;
      } catch (err) {
        if (err instanceof BrowserUnavailable) throw new DownloadError(err.message, false);
        if (err instanceof BrowserCrashed && crashes + 1 < attempts && Date.now() < deadline) {
          // the document is already here: render it again in a fresh browser, no second request
          this.counters.crashRetries++;
          continue;
        }
        if (err instanceof BrowserCrashed) throw new DownloadError(err.message, true);
        if (err instanceof DownloadError) throw err;
        const timedOut = Date.now() >= deadline || /timeout/i.test(errorText(err));
        throw new DownloadError(timedOut ? `render timeout after ${req.timeout}s: ${errorText(err)}` : `render failed: ${errorText(err)}`, true);
      }
    }
  }

  private renderOnce(req: Request, doc: Response, plan: RenderPlan, deadline: number): Promise<{ response: Response; subresources: number }> {
    const url = header(doc, URL_HEADER) ?? req.url;
    return this.pool.withPage(req.module || "_", deadline, async ({ page, context, serve, subresources, settled }) => {
      const cookies = [...req.cookies, ...doc.cookies].flatMap((c) => toBrowserCookie(c, url));
      if (cookies.length > 0) await context.addCookies(cookies);
      const headers: Record<string, string> = {};
      for (const [k, v] of doc.headers) if (!HOP_HEADERS.has(k.toLowerCase())) headers[k] = v;
      // the main frame's navigation is the document we already have; later navigations of the
      // main frame (a script's location.href = ...) are not followed
      serve({ url, status: doc.statusCode, headers, body: doc.content, allowSubresource: subresourceRule(this.options.privateNetworks, req) });
      const left = () => Math.max(1, deadline - Date.now());
      const wait = plan.wait ?? "settled";
      await page.goto(url, { waitUntil: wait === "networkidle" ? "networkidle" : "load", timeout: left() });
      if (wait === "settled") await settled(SETTLE_QUIET_MS, left());
      else if (wait !== "load" && wait !== "networkidle") await page.waitForSelector(wait, { state: "attached", timeout: left() });
      if (plan.hook) await withTimeout(plan.hook(page, req), left(), "the module's render hook");
      const html = await page.content();
      const jar = await context.cookies(url);
      const out: Array<[string, string]> = [];
      for (const [k, v] of doc.headers) if (k !== "content-type" && k !== "content-length" && k !== "content-encoding" && k !== URL_HEADER) out.push([k, v]);
      out.push(["content-type", "text/html; charset=utf-8"], [RENDERED_HEADER, "browser"], [URL_HEADER, url]);
      return {
        subresources: subresources(),
        response: responseFor(req, {
          statusCode: doc.statusCode,
          content: encoder.encode(html),
          headers: out,
          cookies: jar.map((c) =>
            cookie({ name: c.name, value: c.value, domain: c.domain.replace(/^\./, ""), path: c.path, expires: c.expires > 0 ? Math.floor(c.expires) : null, secure: c.secure, httpOnly: c.httpOnly }),
          ),
        }),
      };
    });
  }
}

/**
 * The private-network rule for a page's own fetches: a host the crawl does not name must resolve
 * to public addresses only (each host looked up once per render). Best effort, as through a
 * proxy: Chromium resolves the name again when it connects.
 */
export function subresourceRule(policy: PrivateNetworkPolicy | undefined, req: Request): ((url: string) => Promise<boolean>) | undefined {
  if (!policy || policy.allowAll) return undefined;
  const carried = namedHostsOf(req.meta.task);
  const verdicts = new Map<string, Promise<boolean>>();
  return (url) => {
    let host: string;
    try {
      const u = new URL(url);
      // data:, blob: and the like make no connection
      if (u.protocol !== "http:" && u.protocol !== "https:" && u.protocol !== "ws:" && u.protocol !== "wss:") return Promise.resolve(true);
      host = u.host;
    } catch {
      return Promise.resolve(false);
    }
    let verdict = verdicts.get(host);
    if (!verdict) {
      verdict = mustCheckAddresses(policy, url, req.module, carried) ? checkResolvedHost(url).then(() => true, () => false) : Promise.resolve(true);
      verdicts.set(host, verdict);
    }
    return verdict;
  };
}

function header(res: Response, name: string): string | undefined {
  for (const [k, v] of res.headers) if (k.toLowerCase() === name) return v;
  return undefined;
}

function toBrowserCookie(c: CookieItem, url: string): Array<{ name: string; value: string; url?: string; domain?: string; path?: string; expires?: number; secure?: boolean; httpOnly?: boolean }> {
  if (!c.name) return [];
  const base = { name: c.name, value: c.value, secure: c.secure, httpOnly: c.httpOnly ?? false, ...(c.expires !== null ? { expires: c.expires } : {}) };
  // a cookie without a domain (set by the module for this request) belongs to the page's URL
  return c.domain ? [{ ...base, domain: c.domain, path: c.path || "/" }] : [{ ...base, url }];
}

/** Quiet time after the last request of a page before "settled" takes its DOM. */
export const SETTLE_QUIET_MS = 100;

function withTimeout<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timeout after ${ms} ms`)), ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}
