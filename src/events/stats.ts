import { printable } from "../text/printable.ts";
import type { EventBus } from "./bus.ts";
import type { CrawlEvent, CrawlEventType } from "./events.ts";

/** How many of something, and the first few URLs it happened to. */
export interface CountWithUrls {
  count: number;
  /** the first `FIRST_URLS` URLs */
  urls: string[];
}

/** URLs kept per HTTP status and per dead-letter reason. */
export const FIRST_URLS = 5;

function tally(map: Map<string, CountWithUrls>, key: string, url: string | undefined): void {
  let c = map.get(key);
  if (!c) {
    c = { count: 0, urls: [] };
    map.set(key, c);
  }
  c.count++;
  if (url && c.urls.length < FIRST_URLS) c.urls.push(url);
}

/** The event types CrawlStats counts (its switch). */
const COUNTED: readonly CrawlEventType[] = [
  "response_received",
  "items_stored",
  "http_error",
  "error",
  "retry_scheduled",
  "deferred",
  "dead_lettered",
  "bounded",
  "budget_spent",
  "item_dropped",
  "middleware_error",
  "links_dropped",
  "requests_enqueued",
  "requests_generated",
];

/** Running totals of a crawl, kept by listening to the EventBus. */
export class CrawlStats {
  pages = 0;
  items = 0;
  bytes = 0;
  httpErrors = 0;
  errors = 0;
  /** failures re-queued with backoff (they spend the retry budget) */
  retries = 0;
  /** politeness waits re-queued (they do not) */
  deferred = 0;
  deadLetters = 0;
  duplicates = 0;
  /** items dropped by data middleware, and why ("<middleware>: <reason>" → count) */
  dropped = 0;
  readonly droppedReasons = new Map<string, number>();
  middlewareErrors = 0;
  /** links not crawled, per domain: count by reason, and one example */
  readonly droppedLinks = new Map<string, { reasons: Map<string, number>; example: string }>();
  /** responses by HTTP status (Scrapy's downloader/response_status_count) */
  readonly statuses = new Map<number, number>();
  /** error statuses that were dropped (404, ...), with their first URLs */
  readonly httpErrorsByStatus = new Map<string, CountWithUrls>();
  /** dead letters by reason, with their first URLs */
  readonly deadLettersByReason = new Map<string, CountWithUrls>();
  /** follow-ups left out beyond max_depth, requests not downloaded because a budget was spent */
  readonly bounded = { maxDepth: 0, budget: 0 };
  /** budgets spent, as announced */
  readonly budgetsSpent: Array<{ module: string; runId: string; budget: string; limit: number }> = [];
  readonly startedAt = Date.now();
  private readonly unlisten: () => void;

  constructor(bus: EventBus) {
    // only the types counted here: a per-page event it does not read (request_sent,
    // page_parsed) is not even built when nothing else listens
    this.unlisten = bus.listen(COUNTED, (e) => this.count(e));
  }

  private count(e: CrawlEvent): void {
    switch (e.type) {
      case "response_received":
        this.pages++;
        this.bytes += e.bytes;
        this.statuses.set(e.status, (this.statuses.get(e.status) ?? 0) + 1);
        break;
      case "items_stored":
        this.items += e.count;
        break;
      case "http_error":
        this.httpErrors++;
        tally(this.httpErrorsByStatus, String(e.status), e.url);
        break;
      case "error":
        this.errors++;
        break;
      case "retry_scheduled":
        this.retries++;
        break;
      case "deferred":
        this.deferred++;
        break;
      case "dead_lettered":
        this.deadLetters++;
        tally(this.deadLettersByReason, e.reason, e.url);
        break;
      case "bounded":
        if (e.bound === "max_depth") this.bounded.maxDepth += e.count;
        else this.bounded.budget += e.count;
        break;
      case "budget_spent":
        if (!this.budgetsSpent.some((b) => b.runId === e.runId && b.module === e.module)) {
          this.budgetsSpent.push({ module: e.module, runId: e.runId, budget: e.budget, limit: e.limit });
        }
        break;
      case "item_dropped": {
        this.dropped++;
        // bounded: a reason built from item data must not grow this without limit
        let key = `${e.middleware}: ${e.reason}`;
        if (!this.droppedReasons.has(key) && this.droppedReasons.size >= 100) key = `${e.middleware}: (other reasons)`;
        this.droppedReasons.set(key, (this.droppedReasons.get(key) ?? 0) + 1);
        break;
      }
      case "middleware_error":
        this.middlewareErrors++;
        break;
      case "links_dropped": {
        let d = this.droppedLinks.get(e.domain);
        if (!d) this.droppedLinks.set(e.domain, (d = { reasons: new Map(), example: e.example }));
        d.reasons.set(e.reason, (d.reasons.get(e.reason) ?? 0) + e.count);
        break;
      }
      case "requests_enqueued":
      case "requests_generated":
        this.duplicates += e.duplicates;
        break;
    }
  }

  get elapsedSecs(): number {
    return (Date.now() - this.startedAt) / 1000;
  }

  get pagesPerSec(): number {
    const s = this.elapsedSecs;
    return s > 0 ? this.pages / s : 0;
  }

  /**
   * Every link not followed in one line: counts by reason, the three domains with most, e.g.
   * "links not followed: 2202 off-site (same-host strategy), 3 nofollow; most on
   * bugs.python.org (2202), ... (per domain: --log-level debug)". Undefined when none were.
   */
  droppedLinksSummary(): string | undefined {
    if (this.droppedLinks.size === 0) return undefined;
    const byReason = new Map<string, number>();
    const byDomain: Array<[string, number]> = [];
    for (const [domain, d] of this.droppedLinks) {
      let total = 0;
      for (const [r, n] of d.reasons) {
        byReason.set(r, (byReason.get(r) ?? 0) + n);
        total += n;
      }
      byDomain.push([domain, total]);
    }
    const reasons = [...byReason].sort((a, b) => b[1] - a[1]).map(([r, n]) => `${n} ${r}`).join(", ");
    byDomain.sort((a, b) => b[1] - a[1]);
    const top = byDomain.slice(0, 3).map(([d, n]) => `${printable(d)} (${n})`).join(", ");
    const more = byDomain.length > 3 ? ` and ${byDomain.length - 3} more domains` : "";
    return `links not followed: ${reasons}; most on ${top}${more} (per domain: --log-level debug)`;
  }

  /** One line per domain with dropped links: "links not followed on shop.example: 12 strategy, 3 nofollow (e.g. ...)". */
  droppedLinksLines(maxDomains = 20): string[] {
    const rows = [...this.droppedLinks].map(([domain, d]) => ({ domain, d, total: [...d.reasons.values()].reduce((a, b) => a + b, 0) }));
    rows.sort((a, b) => b.total - a.total);
    const lines = rows.slice(0, maxDomains).map(({ domain, d }) => {
      const reasons = [...d.reasons].map(([r, n]) => `${n} ${r}`).join(", ");
      return `links not followed on ${printable(domain)}: ${reasons} (e.g. ${printable(d.example.slice(0, 120))})`;
    });
    if (rows.length > maxDomains) lines.push(`links not followed on ${rows.length - maxDomains} more domains`);
    return lines;
  }

  stop(): void {
    this.unlisten();
  }
}
