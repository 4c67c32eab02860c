// src/bounds/bounds.ts: how far a run may go — link depth, requests and items per run and module.
//
// Depth travels with each request, in mocra's MetaData: `meta.task` holds `{"depth": N}` (a JSON
// object; other keys there are kept), and a Response carries its Request's meta, so a follow-up
// made on any worker gets its parent's depth + 1. Start requests are depth 0.
// Crawl traps travel the same way: `meta.task.trap` holds the URL shape of the page a request was
// found on, how many pages of that shape in a row found nothing new (`barren`), and a hash of
// what that page found (`found`), so any worker can tell whether the chain still discovers.
// Budgets are counted per run (TaskModel.run_id) and module, in a BudgetStore: one process's, or
// Redis for every worker of the run.

import type { CrawlerConfig } from "../config/schema.ts";
import type { CrawlEvent } from "../events/events.ts";
import { fingerprint, type JsonValue, type MetaData, type Request, type Response } from "../model/index.ts";
import { setHash, urlShape } from "../url/shape.ts";
import type { BudgetKey, BudgetName, BudgetStore } from "./budget-store.ts";

/** The limits of one module; 0 = unlimited. */
/** A module's settings as the bounds read them: `maxDepth`, `maxRequests`, `maxItems` (checked as whole numbers here). */
export type BoundSettings = Readonly<Record<string, unknown>>;

export interface Limits {
  maxDepth: number;
  maxRequests: number;
  maxItems: number;
  maxBarrenHops: number;
}

/** Where a request sits in a chain of pages of one URL shape (see the header). */
export interface TrapTrail {
  /** the URL shape of the page the request was found on */
  shape: string;
  /** pages of that shape in a row, up to that page, that found nothing new */
  barren: number;
  /** hash of what that page found: its new links of other shapes */
  found: string;
}

/** The trap trail a request (or the Response it made) carries, if any. */
export function trailOf(meta: MetaData): TrapTrail | undefined {
  const t = meta.task;
  if (!t || typeof t !== "object" || Array.isArray(t)) return undefined;
  const trap = t.trap;
  if (!trap || typeof trap !== "object" || Array.isArray(trap)) return undefined;
  const { shape, barren, found } = trap;
  if (typeof shape !== "string" || typeof barren !== "number" || typeof found !== "string") return undefined;
  return { shape, barren, found };
}

/**
 * The trail of a page's follow-ups of its own shape: one more barren page if the page is of its
 * parent's shape and found what its parent found (no items, no new links of another shape).
 */
export function nextTrail(pageUrl: string, parent: TrapTrail | undefined, requests: readonly Request[], items: number, shapes: readonly string[] = requests.map((r) => urlShape(r.url))): TrapTrail {
  const shape = urlShape(pageUrl);
  const others: string[] = [];
  for (let i = 0; i < requests.length; i++) if (shapes[i] !== shape) others.push(requests[i].url);
  const found = setHash(others);
  const barren = items === 0 && parent !== undefined && parent.shape === shape && parent.found === found;
  return { shape, barren: barren ? parent.barren + 1 : 0, found };
}

/** The link depth a request (or the Response it made) was found at. */
export function depthOf(meta: MetaData): number {
  const t = meta.task;
  if (t && typeof t === "object" && !Array.isArray(t)) {
    const d = t.depth;
    if (typeof d === "number" && Number.isSafeInteger(d) && d >= 0) return d;
  }
  return 0;
}

/** `meta` with its depth set (keeping whatever else `meta.task` holds, when it is an object). */
export function withDepth(meta: MetaData, depth: number): MetaData {
  const t = meta.task;
  const task: { [key: string]: JsonValue } = t && typeof t === "object" && !Array.isArray(t) ? { ...t, depth } : { depth };
  return { ...meta, task };
}

export interface CrawlBoundsOptions {
  store: BudgetStore;
  crawler: Pick<CrawlerConfig, "maxDepth" | "maxRequests" | "maxItems"> & Partial<Pick<CrawlerConfig, "maxBarrenHops">>;
  /** a module's own settings (maxDepth, maxRequests, maxItems win over [crawler]) */
  settingsOf: (module: string) => BoundSettings | undefined;
  emit?: (event: CrawlEvent) => void;
}

const wholeNumber = (v: unknown): number | undefined => (typeof v === "number" && Number.isInteger(v) && v >= 0 ? v : undefined);

/**
 * Enforces the bounds: follow-ups deeper than max_depth are not enqueued; a run's requests are
 * admitted to download while max_requests has room (each fingerprint counted once, retries
 * free); once max_requests or max_items is spent the run enqueues and downloads nothing new
 * (what is in flight finishes). Each spent budget is announced once per worker (`budget_spent`).
 */
export class CrawlBounds {
  /** runs known to have spent a budget (sticky: a spent budget stays spent) */
  private readonly spent = new Map<string, BudgetName>();

  constructor(private readonly o: CrawlBoundsOptions) {}

  limitsOf(module: string): Limits {
    const s = this.o.settingsOf(module);
    const c = this.o.crawler;
    return {
      maxDepth: wholeNumber(s?.maxDepth) ?? c.maxDepth,
      maxRequests: wholeNumber(s?.maxRequests) ?? c.maxRequests,
      maxItems: wholeNumber(s?.maxItems) ?? c.maxItems,
      maxBarrenHops: wholeNumber(s?.maxBarrenHops) ?? c.maxBarrenHops ?? 0,
    };
  }

  /** Whether this worker knows the run has spent a budget (no store call). */
  isSpent(runId: string, module: string): boolean {
    return this.spent.has(`${runId}:${module}`);
  }

  /** May this request be downloaded now? (One store call per request when a budget is set.) */
  async admit(req: Request): Promise<boolean> {
    const limits = this.limitsOf(req.module);
    if (limits.maxRequests === 0 && limits.maxItems === 0) return true;
    const key = { runId: req.runId, module: req.module };
    const r = await this.o.store.takeRequest(key, fingerprint(req), limits.maxRequests);
    if (r === "last") this.markSpent(key, "max_requests", limits.maxRequests);
    if (typeof r === "object") {
      this.markSpent(key, r.refused.budget, r.refused.limit);
      this.o.emit?.({ type: "bounded", module: req.module, bound: "budget", count: 1, url: req.url });
      return false;
    }
    return true;
  }

  /**
   * The follow-ups of a parsed page that may be enqueued: each gets the page's depth + 1; those
   * beyond max_depth, and all of them once the run has spent a budget, are left out (counted in
   * a `bounded` event). `items` is how many items the page stored (counted towards max_items).
   * Follow-ups of the page's own URL shape carry its trap trail; once max_barren_hops pages of
   * that shape in a row found nothing new, they are left out (a `links_dropped` event).
   */
  async followUps(response: Response, requests: Request[], items: number, pageUrl?: string): Promise<Request[]> {
    const limits = this.limitsOf(response.module);
    const key = { runId: response.runId, module: response.module };
    // items are counted for every run with a budget, so that `status` shows them
    const budgeted = limits.maxItems > 0 || limits.maxRequests > 0;
    if (items > 0 && budgeted) {
      const spent = await this.o.store.addItems(key, items, limits.maxItems);
      if (spent) this.markSpent(key, spent.budget, spent.limit);
    }
    if (requests.length === 0) return [];
    if (this.isSpent(key.runId, key.module)) {
      this.o.emit?.({ type: "bounded", module: response.module, bound: "budget", count: requests.length });
      return [];
    }
    const depth = depthOf(response.metadata) + 1;
    if (limits.maxDepth > 0 && depth > limits.maxDepth) {
      this.o.emit?.({ type: "bounded", module: response.module, bound: "max_depth", count: requests.length });
      return [];
    }
    // the requests were just made by this page's parse: set their depth in place
    for (const r of requests) r.meta = withDepth(r.meta, depth);
    return pageUrl === undefined ? requests : this.withoutTraps(response, pageUrl, requests, items, limits.maxBarrenHops);
  }

  /** `requests` with the page's trap trail on those of its shape; none of them past maxBarrenHops. */
  private withoutTraps(response: Response, pageUrl: string, requests: Request[], items: number, maxBarrenHops: number): Request[] {
    if (maxBarrenHops === 0) return requests;
    // each follow-up's shape once (a page of 500 links: half the URL parsing of asking twice)
    const shapes = requests.map((r) => urlShape(r.url));
    const trail = nextTrail(pageUrl, trailOf(response.metadata), requests, items, shapes);
    const kept: Request[] = [];
    let dropped: Request | undefined;
    let count = 0;
    for (let i = 0; i < requests.length; i++) {
      const r = requests[i];
      if (shapes[i] !== trail.shape) {
        kept.push(r);
        continue;
      }
      if (trail.barren >= maxBarrenHops) {
        dropped ??= r;
        count++;
        continue;
      }
      const t = r.meta.task as { [key: string]: JsonValue };
      r.meta = { ...r.meta, task: { ...t, trap: { ...trail } } };
      kept.push(r);
    }
    if (dropped) {
      const domain = (() => {
        try {
          return new URL(dropped.url).host;
        } catch {
          return "";
        }
      })();
      this.o.emit?.({ type: "links_dropped", module: response.module, domain, reason: `crawl trap (${maxBarrenHops} pages of one URL shape in a row found nothing new: max_barren_hops)`, count, example: dropped.url });
    }
    return kept;
  }

  /** Whether any of these modules (or [crawler]) sets max_requests or max_items: else no budget stage is needed. */
  anyBudget(modules: readonly string[]): boolean {
    const c = this.o.crawler;
    if (c.maxRequests > 0 || c.maxItems > 0) return true;
    return modules.some((m) => {
      const l = this.limitsOf(m);
      return l.maxRequests > 0 || l.maxItems > 0;
    });
  }

  private markSpent(key: BudgetKey, budget: BudgetName, limit: number): void {
    const id = `${key.runId}:${key.module}`;
    if (this.spent.has(id)) return;
    this.spent.set(id, budget);
    this.o.emit?.({ type: "budget_spent", module: key.module, runId: key.runId, budget, limit });
  }
}
