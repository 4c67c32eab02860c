// src/model/render.ts: how a request is rendered. A request's `downloader` names its
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
import type { Request } from "./request.ts";

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

/** Does this request need a browser-capable worker (render "browser" or "auto")? It goes to the `render` topic. */
export function needsRenderer(req: Pick<Request, "downloader">): boolean {
  const r = requestRender(req);
  return r !== undefined && r.mode !== "http";
}
