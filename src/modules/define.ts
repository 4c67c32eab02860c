import type { Middleware } from "./middleware.ts";
import type { JsonValue, Priority, TaskModel } from "../model/index.ts";
import type { LockOptions, WithLock } from "../sync/lock.ts";
import type { LinkRules } from "../url/link-rules.ts";
import type { Page } from "./page.ts";

/** A request a module asks for: a URL, or a URL with options. */
export interface RequestSpec {
  url: string;
  method?: string;
  headers?: Record<string, string>;
  /** raw body */
  body?: string | Uint8Array;
  /** JSON body (sent as application/json) */
  json?: JsonValue;
  /** form body (sent as application/x-www-form-urlencoded) */
  form?: Record<string, string>;
  cookies?: Record<string, string>;
  /** which step parses the response (multi-step modules); default: the current step for follow(), the first for start() */
  step?: string;
  /** your data, handed back as `page.data` when the response is parsed */
  data?: JsonValue;
  priority?: Priority;
  /** per-request timeout in seconds */
  timeoutSecs?: number;
  /** false: fetch even if this request was seen before (the fingerprint gets a unique suffix) */
  dedup?: boolean;
  /** fetch this page over HTTP, render it in headless Chromium, or "auto" (default: the module's `render`); see docs/browser.md */
  render?: "http" | "browser" | "auto";
  /** rendered pages: "settled" (default: load, then no request in flight for 100 ms), "load", "networkidle", or a CSS selector to wait for */
  renderWait?: string;
}

export type Seed = string | RequestSpec;

/** What ctx.enqueueLinks() follows, and the options of the requests it makes. */
export interface EnqueueLinksOptions extends LinkRules, Omit<RequestSpec, "url"> {
  /** the link elements (default "a[href]") */
  selector?: string;
  /** only links inside elements matching this CSS selector */
  scope?: string;
  /** honour rel="nofollow" and `<meta name="robots" content="nofollow">` (default true) */
  nofollow?: boolean;
}

/** The named keys of ModuleSettings (without its `[key: string]` catch-all). */
type NamedSettingKeys = keyof { [K in keyof ModuleSettings as string extends K ? never : K]: true };

/**
 * Each named ModuleSettings key as written in config.toml: the compiler makes a setting added
 * to ModuleSettings be listed here too (so `[modules.<name>]` accepts it).
 */
const SETTING_KEYS: Record<NamedSettingKeys, string> = {
  rateLimit: "rate_limit",
  allowedDomains: "allowed_domains",
  headers: "headers",
  maxRetries: "max_retries",
  handleStatuses: "handle_statuses",
  obeyRobotsTxt: "obey_robots_txt",
  keepQueryOrder: "keep_query_order",
  stripParams: "strip_params",
  contentTypes: "content_types",
  dedupItemsByCanonical: "dedup_items_by_canonical",
  maxBarrenHops: "max_barren_hops",
  linkRules: "link_rules",
  maxFollowsPerPage: "max_follows_per_page",
  parseTimeoutSecs: "parse_timeout_secs",
  render: "render",
  renderWait: "render_wait",
  renderCheck: "render_check",
  renderHook: "render_hook",
  sensitiveHeaders: "sensitive_headers",
};

/**
 * The keys of `[modules.<name>]` the engine itself reads (ModuleSettings below, the crawl bounds
 * and the schedule), as written in config.toml. Any other key must be one the module declares
 * in `settings` (a typo is a configuration error, with "did you mean").
 */
export const ENGINE_MODULE_SETTINGS: readonly string[] = [...Object.values(SETTING_KEYS), "max_depth", "max_requests", "max_items", "cron"];

/** Per-module settings; `[modules.<name>]` in config.toml overrides them. */
export interface ModuleSettings {
  /** requests per second per domain for this module (0 = the global default) */
  rateLimit?: number;
  /** only follow links to these domains (and their subdomains); default: any */
  allowedDomains?: string[];
  /**
   * headers sent with every request of this module; the credential ones (Authorization,
   * Proxy-Authorization, Cookie and `sensitiveHeaders`) not with a follow-up or redirect that
   * leaves the origin of the page it came from
   */
  headers?: Record<string, string>;
  /** more header names (any case) that carry secrets: dropped when a redirect or follow-up leaves the origin */
  sensitiveHeaders?: string[];
  /** deliveries of a failing request before it is dead-lettered */
  maxRetries?: number;
  /** HTTP statuses handed to parse() instead of being dropped as errors (default: only 2xx/3xx) */
  handleStatuses?: number[];
  /** obey robots.txt (default: config crawler.obey_robots_txt) */
  obeyRobotsTxt?: boolean;
  /** keep query parameters in link order when canonicalising URLs (default: config crawler.keep_query_order) */
  keepQueryOrder?: boolean;
  /** query parameters (names or globs) removed from URLs (default: config crawler.strip_params) */
  stripParams?: string[];
  /** binary content types handed to parse() too (e.g. ["application/pdf", "image/*"]); text kinds always are */
  contentTypes?: string[];
  /** store the items of pages sharing one `<link rel=canonical>` once (default: config crawler.dedup_items_by_canonical) */
  dedupItemsByCanonical?: boolean;
  /** crawl traps: pages of one URL shape in a row that found nothing new before its links are not followed (default: config crawler.max_barren_hops; 0 = off) */
  maxBarrenHops?: number;
  /** defaults for ctx.enqueueLinks(): strategy, include/exclude, selector, scope, nofollow */
  linkRules?: EnqueueLinksOptions;
  /** deadline (s) of one start()/parse() call (default: config crawler.parse_timeout_secs); see docs/module-faults.md */
  parseTimeoutSecs?: number;
  /** links one page may hand to follow()/enqueueLinks(); the rest are counted as dropped (default: config crawler.max_follows_per_page) */
  maxFollowsPerPage?: number;
  /** "http" (default), "browser" (render every page in headless Chromium), or "auto" (render when `renderCheck` says so); docs/browser.md */
  render?: "http" | "browser" | "auto";
  /** what a render waits for: "settled" (default: load, then no request in flight for 100 ms), "load", "networkidle", or a CSS selector */
  renderWait?: string;
  /** "auto": a CSS selector the HTTP page must match (else it is rendered), or a function of the Page returning true when it needs a browser */
  renderCheck?: string | ((page: Page) => boolean);
  /** acts on the live Playwright page after the wait, before its DOM goes to parse (scroll, click "load more"); under the request's timeout */
  renderHook?: (page: import("playwright-core").Page, request: import("../model/index.ts").Request) => Promise<void>;
  /** anything else your module reads from ctx.settings */
  [key: string]: unknown;
}

export interface StartContext {
  readonly task: TaskModel;
  /** the module's settings, merged with `[modules.<name>]` from config */
  readonly settings: Readonly<ModuleSettings>;
  /** metadata of the parser task that started this module, if any */
  readonly metadata: JsonValue;
  /** runs `fn` holding the lock `name`, shared by every worker of the crawl (see src/sync/lock.ts) */
  lock<T>(name: string, fn: WithLock<T>, options?: LockOptions): Promise<T>;
}

export interface ParseContext<Item> {
  /** the step parsing this page */
  readonly step: string;
  readonly settings: Readonly<ModuleSettings>;
  /** store one item */
  emit(item: Item): void;
  /**
   * Crawl these URLs next (relative ones resolve against the page). A string that is not a URL
   * is not a selector: pass `page.links("css")` for that. Returns how many were queued here
   * (before dedup across the crawl).
   */
  follow(targets: Seed | Iterable<Seed>, options?: Omit<RequestSpec, "url">): number;
  /**
   * Follows the page's links by rules (Crawlee's enqueueLinks): `a[href]` (or `selector`) inside
   * `scope`, rel=nofollow skipped, then the strategy (default "same-host"), include and exclude
   * patterns. The module's `linkRules` setting gives the defaults. Returns how many were queued.
   */
  enqueueLinks(options?: EnqueueLinksOptions): number;
  /** start another module's task (mocra's ParserTask) with this metadata */
  startModule(module: string, metadata?: JsonValue): void;
  /** runs `fn` holding the lock `name`, shared by every worker of the crawl (see src/sync/lock.ts) */
  lock<T>(name: string, fn: WithLock<T>, options?: LockOptions): Promise<T>;
}

export type ParseFn<Item> = (page: Page, ctx: ParseContext<Item>) => void | Promise<void>;

export interface ModuleDefinition<Item = Record<string, unknown>> {
  /** unique name; also the output file name and the request's `module` */
  name: string;
  /** the first requests of a task; may be an (async) iterable pulled only as the queue has room */
  start(ctx: StartContext): Iterable<Seed> | AsyncIterable<Seed> | Promise<Iterable<Seed>>;
  /** single-step modules: parse every response here */
  parse?: ParseFn<Item>;
  /** multi-step modules: named steps, the first is where start() requests go by default */
  steps?: Record<string, ParseFn<Item>>;
  settings?: ModuleSettings;
  /** download, data and store middleware of this module, run after the global ones of equal weight */
  middleware?: readonly Middleware[];
  /**
   * Submit a task for this module on this cron schedule (6 fields with seconds, or 5 without,
   * optional year; mocra's `cron` crate forms); `cron` in `[modules.<name>]` overrides it.
   */
  cron?: string;
}

/** A checked module, as the engine uses it. */
export interface CrawlModule<Item = Record<string, unknown>> extends ModuleDefinition<Item> {
  readonly stepNames: readonly string[];
  stepFn(index: number): ParseFn<Item>;
  stepIndex(name: string): number;
}

/**
 * Declares a crawl module: default-export the result from a file in `modules/`.
 *
 * ```ts
 * export default defineModule({
 *   name: "books",
 *   start: () => ["https://books.example/"],
 *   parse(page, ctx) {
 *     ctx.follow(page.links("a.next"));
 *     for (const b of page.select("article")) ctx.emit({ title: b.text("h3") });
 *   },
 * });
 * ```
 */
export function defineModule<Item = Record<string, unknown>>(def: ModuleDefinition<Item>): CrawlModule<Item> {
  if (!def.name || !/^[A-Za-z0-9_.-]+$/.test(def.name)) {
    throw new TypeError(`defineModule: name must be letters, digits, _ . or -, got ${JSON.stringify(def.name)}`);
  }
  if (typeof def.start !== "function") throw new TypeError(`module ${def.name}: start must be a function`);
  const steps: Record<string, ParseFn<Item>> = def.steps ?? (def.parse ? { parse: def.parse } : {});
  if (def.steps && def.parse) throw new TypeError(`module ${def.name}: give either parse or steps, not both`);
  const stepNames = Object.keys(steps);
  if (stepNames.length === 0) throw new TypeError(`module ${def.name}: needs parse or steps`);
  const fns = stepNames.map((n) => steps[n]);
  return {
    ...def,
    stepNames,
    stepFn(index: number): ParseFn<Item> {
      return fns[index] ?? fns[0];
    },
    stepIndex(name: string): number {
      const i = stepNames.indexOf(name);
      if (i < 0) throw new Error(`module ${def.name} has no step ${JSON.stringify(name)} (steps: ${stepNames.join(", ")})`);
      return i;
    },
  };
}
