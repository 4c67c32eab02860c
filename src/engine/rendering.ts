// src/engine/rendering.ts: the browser downloader as the engine builds it — module settings
// (render, render_wait, render_check, renderHook) turned into render plans, the [browser] pool,
// and the start-up check that names the setting asking for a browser when there is none.
import type { Page as LivePage } from "playwright-core";
import type { Config } from "../config/index.ts";
import { BrowserDownloader, type RenderPlan } from "../download/browser-downloader.ts";
import { BrowserPool } from "../download/browser-pool.ts";
import type { Downloader } from "../download/downloader.ts";
import { privateNetworkPolicy } from "../download/private-network.ts";
import { isRenderMode, requestRender } from "../model/index.ts";
import type { EventBus } from "../events/bus.ts";
import { type Request, type Response, URL_HEADER } from "../model/index.ts";
import type { ModuleSettings } from "../modules/define.ts";
import { Page } from "../modules/page.ts";
import type { ModuleLookup } from "./politeness.ts";

/** Body text shorter than this (scripts excluded) makes "auto" render a page when the module gives no render_check. */
export const AUTO_MIN_TEXT = 200;

const HTTP_PLAN: RenderPlan = { mode: "http" };

/** The render plan of a module's settings (`render`, `renderWait`, `renderCheck`, `renderHook`). */
export function renderPlanOf(settings: Readonly<ModuleSettings>): RenderPlan {
  const mode = isRenderMode(settings.render) ? settings.render : "http";
  const plan: RenderPlan = { mode };
  if (typeof settings.renderWait === "string" && settings.renderWait !== "") plan.wait = settings.renderWait;
  const hook = settings.renderHook;
  if (typeof hook === "function") plan.hook = hook as (page: LivePage, req: Request) => Promise<void>;
  const check = settings.renderCheck;
  plan.needsBrowser =
    typeof check === "string" && check !== ""
      ? (req, res) => pageOf(req, res).select(check).length === 0
      : typeof check === "function"
        ? (req, res) => (check as (page: Page) => boolean)(pageOf(req, res)) === true
        : (req, res) => pageOf(req, res).text("body").length < AUTO_MIN_TEXT;
  return plan;
}

function pageOf(req: Request, res: Response): Page {
  return new Page(res, res.headers.find(([k]) => k === URL_HEADER)?.[1] ?? req.url, null);
}

/** Does this module, or this request, ask for a browser (render = "browser" | "auto")? */
export function wantsBrowser(req: Request, modules: ModuleLookup): boolean {
  if (requestRender(req)) return true;
  return req.module !== "" && modules.has(req.module) && isRenderMode(modules.settings(req.module).render) && modules.settings(req.module).render !== "http";
}

/** The modules whose settings ask for a browser, as `render = "browser" (module shop)` for messages. */
export function modulesAskingForBrowser(modules: ModuleLookup & { names(): string[] }, names: readonly string[] = modules.names()): string[] {
  return names.filter((n) => {
    const r = modules.settings(n).render;
    return r === "browser" || r === "auto";
  }).map((n) => `render = "${String(modules.settings(n).render)}" (module ${n})`);
}

export interface Rendering {
  downloader: BrowserDownloader;
  pool: BrowserPool;
  close(): Promise<void>;
}

/**
 * Wraps `http` in a BrowserDownloader with a pool from `[browser]`. Nothing is launched (nor
 * playwright-core loaded) until a page asks for a render. With `check`, start-up fails now with
 * one line when a module asks for a browser and there is no Chromium.
 */
export function createRendering(
  config: Config,
  modules: ModuleLookup & { names(): string[] },
  http: Downloader,
  options: { events?: EventBus; check?: readonly string[]; askedBy?: string } = {},
): Rendering {
  const b = config.browser;
  const asking = () => [options.askedBy, ...modulesAskingForBrowser(modules)].filter(Boolean).join(", ") || 'render = "browser" on a request';
  const pool = new BrowserPool({
    executable: b.executable,
    concurrency: b.concurrency,
    recyclePages: b.recyclePages,
    blockResources: b.blockResources,
    userAgent: config.crawler.userAgent,
    launchTimeoutMs: b.launchTimeoutSecs * 1000,
    askedBy: asking,
  });
  if (options.check && modulesAskingForBrowser(modules, options.check).length > 0) pool.check();
  const plans = new WeakMap<object, RenderPlan>();
  const downloader = new BrowserDownloader(http, pool, {
    planOf(req) {
      if (!req.module || !modules.has(req.module)) return HTTP_PLAN;
      const settings = modules.settings(req.module);
      let plan = plans.get(settings);
      if (!plan) plans.set(settings, (plan = renderPlanOf(settings)));
      return plan;
    },
    privateNetworks: privateNetworkPolicy(config.downloadConfig, (m) => (modules.has(m) ? modules.settings(m).allowedDomains : undefined)),
    onRender: (info) => options.events?.emit({ type: "page_rendered", url: info.url, module: info.module, ms: info.ms, subresources: info.subresources, learned: info.learned }),
  });
  return { downloader, pool, close: () => pool.close() };
}
