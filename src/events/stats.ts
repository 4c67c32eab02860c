import type { Subscription } from "rxjs";
import type { EventBus } from "./bus.ts";

/** Running totals of a crawl, kept by subscribing to the EventBus. */
export class CrawlStats {
  pages = 0;
  items = 0;
  bytes = 0;
  httpErrors = 0;
  errors = 0;
  retries = 0;
  deadLetters = 0;
  duplicates = 0;
  /** items dropped by data middleware, and why ("<middleware>: <reason>" → count) */
  dropped = 0;
  readonly droppedReasons = new Map<string, number>();
  middlewareErrors = 0;
  readonly startedAt = Date.now();
  private readonly sub: Subscription;

  constructor(bus: EventBus) {
    this.sub = bus.events$.subscribe((e) => {
      switch (e.type) {
        case "response_received":
          this.pages++;
          this.bytes += e.bytes;
          break;
        case "items_stored":
          this.items += e.count;
          break;
        case "http_error":
          this.httpErrors++;
          break;
        case "error":
          this.errors++;
          break;
        case "retry_scheduled":
          this.retries++;
          break;
        case "dead_lettered":
          this.deadLetters++;
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
        case "requests_enqueued":
        case "requests_generated":
          this.duplicates += e.duplicates;
          break;
      }
    });
  }

  get elapsedSecs(): number {
    return (Date.now() - this.startedAt) / 1000;
  }

  get pagesPerSec(): number {
    const s = this.elapsedSecs;
    return s > 0 ? this.pages / s : 0;
  }

  stop(): void {
    this.sub.unsubscribe();
  }
}
