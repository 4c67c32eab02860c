import type { Subscription } from "rxjs";
import type { EventBus } from "./bus.ts";

/** Text from the network made safe for a terminal: control characters shown as \uXXXX. */
function printable(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

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
  /** links not crawled, per domain: count by reason, and one example */
  readonly droppedLinks = new Map<string, { reasons: Map<string, number>; example: string }>();
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
    });
  }

  get elapsedSecs(): number {
    return (Date.now() - this.startedAt) / 1000;
  }

  get pagesPerSec(): number {
    const s = this.elapsedSecs;
    return s > 0 ? this.pages / s : 0;
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
    this.sub.unsubscribe();
  }
}
