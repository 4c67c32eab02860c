import type { Subscription } from "rxjs";
import type { EventBus } from "./bus.ts";

/** Running totals of a crawl, kept by subscribing to the EventBus. */
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
        case "deferred":
          this.deferred++;
          break;
        case "dead_lettered":
          this.deadLetters++;
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
