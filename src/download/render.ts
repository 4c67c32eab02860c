// src/download/render.ts: how a request is rendered. A request's `downloader` names its
// downloader (mocra's field, "request_downloader" by default); rendering uses two more names,
// with an optional wait condition after a colon, so the choice travels with the request to any
// worker:
//   "browser_downloader"                       render in Chromium, wait until settled (load, then
//                                              no request in flight for 100 ms)
//   "browser_downloader:load"                  ... for the load event only
//   "browser_downloader:networkidle"           ... until the network is idle (500 ms)
//   "browser_downloader:selector:<css>"        ... until <css> matches
//   "auto_downloader[:...]"                    HTTP first, render when the module's check says so
//   "http_downloader"                          HTTP only, whatever the module's `render`
import type { Request } from "../model/index.ts";

export type RenderMode = "http" | "browser" | "auto";
/** "settled" (default), "load", "networkidle", or a CSS selector to wait for */
export type RenderWait = string;

/** mocra's default: the module's `render` setting decides */
export const DEFAULT_DOWNLOADER = "request_downloader";
/** plain HTTP even when the module renders */
export const HTTP_DOWNLOADER = "http_downloader";
export const BROWSER_DOWNLOADER = "browser_downloader";
export const AUTO_DOWNLOADER = "auto_downloader";

export function isRenderMode(v: unknown): v is RenderMode {
  return v === "http" || v === "browser" || v === "auto";
}

/** The `downloader` value of a request asking for this mode and wait. */
export function downloaderName(mode: RenderMode, wait?: RenderWait): string {
  if (mode === "http") return HTTP_DOWNLOADER;
  const base = mode === "browser" ? BROWSER_DOWNLOADER : AUTO_DOWNLOADER;
  if (wait === undefined || wait === "" || wait === "settled") return base;
  return wait === "networkidle" || wait === "load" ? `${base}:${wait}` : `${base}:selector:${wait}`;
}

/** What the request itself asks for (its `downloader`), or undefined when it leaves it to the module. */
export function requestRender(req: Pick<Request, "downloader">): { mode: RenderMode; wait?: RenderWait } | undefined {
  const d = req.downloader;
  let mode: RenderMode;
  if (d === HTTP_DOWNLOADER) return { mode: "http" };
  if (d.startsWith(BROWSER_DOWNLOADER)) mode = "browser";
  else if (d.startsWith(AUTO_DOWNLOADER)) mode = "auto";
  else return undefined;
  const rest = d.slice(mode === "browser" ? BROWSER_DOWNLOADER.length : AUTO_DOWNLOADER.length);
  if (rest === "") return { mode };
  if (rest === ":networkidle" || rest === ":load") return { mode, wait: rest.slice(1) };
  if (rest.startsWith(":selector:")) return { mode, wait: rest.slice(":selector:".length) };
  return { mode };
}

/**
 * The URL pattern a render decision is remembered under: the host and the path with every
 * segment holding a digit (an id, a page number) replaced by `*`, the query dropped. Pages of
 * one template share a pattern: /product/17 and /product/912 are `host/product/*`.
 */
export function urlPattern(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return url;
  }
  const path = u.pathname
    .split("/")
    .map((s) => (/\d/.test(s) ? "*" : s))
    .join("/");
  return `${u.host}${path}`;
}

/** Observations of one pattern. */
interface PatternStats {
  /** HTTP pages whose check passed (no render needed) */
  plain: number;
  /** pages that needed a render */
  rendered: number;
  /** pages since the decision was last checked */
  sinceProbe: number;
}

/**
 * Learns, per URL pattern, whether pages need a browser. After `confidence` pages of one pattern
 * all needing a render, later pages of it are rendered without the check; one page in
 * `probeEvery` is checked again, so a template that stops needing a browser is noticed. One
 * plain page resets the pattern to checking. Bounded: at most `maxPatterns` patterns (the
 * oldest go first).
 */
export class RenderMemory {
  private readonly patterns = new Map<string, PatternStats>();

  constructor(
    private readonly confidence = 3,
    private readonly probeEvery = 50,
    private readonly maxPatterns = 10_000,
  ) {}

  /** Should a page of `url`'s pattern be rendered without running the check first? */
  knownToNeedBrowser(url: string): boolean {
    const s = this.patterns.get(urlPattern(url));
    if (!s || s.plain > 0 || s.rendered < this.confidence) return false;
    if (++s.sinceProbe >= this.probeEvery) {
      s.sinceProbe = 0;
      return false;
    }
    return true;
  }

  record(url: string, neededBrowser: boolean): void {
    const key = urlPattern(url);
    let s = this.patterns.get(key);
    if (!s) {
      if (this.patterns.size >= this.maxPatterns) this.patterns.delete(this.patterns.keys().next().value!);
      s = { plain: 0, rendered: 0, sinceProbe: 0 };
      this.patterns.set(key, s);
    }
    if (neededBrowser) {
      s.rendered++;
      s.plain = 0;
    } else {
      s.plain++;
      s.rendered = 0;
    }
  }

  /** pattern → "browser" | "http" | "learning", for status displays and tests */
  snapshot(): Record<string, "browser" | "http" | "learning"> {
    const out: Record<string, "browser" | "http" | "learning"> = {};
    for (const [k, s] of this.patterns) out[k] = s.rendered >= this.confidence ? "browser" : s.plain > 0 ? "http" : "learning";
    return out;
  }
}
