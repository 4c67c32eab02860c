// tests/bench/metrics-cost.ts: CPU cost of the metrics subscriber per page, in process: the
// events one crawled page emits, through an EventBus with CrawlStats only (what every run has)
// and with EngineMetrics too. A loaded machine slows both sides alike; the difference is the cost.
import { EventBus } from "../../src/events/bus.ts";
import { CrawlStats } from "../../src/events/stats.ts";
import { EngineMetrics } from "../../src/observe/metrics.ts";

function emitPage(bus: EventBus, i: number): void {
  const url = `http://shop.test/item/${i}`;
  bus.emit({ type: "request_sent", url, module: "demo_shop", attempt: 1 });
  bus.emit({ type: "response_received", url, module: "demo_shop", status: 200, bytes: 6000, ms: 3.2, fromCache: false });
  bus.emit({ type: "page_parsed", module: "demo_shop", ms: 0.4 });
  bus.emit({ type: "items_stored", module: "demo_shop", count: 1, ms: 0.1 });
  bus.emit({ type: "requests_enqueued", topic: "request", accepted: 1, duplicates: 4 });
  bus.emit({ type: "message_acked", topic: "request", priority: "normal" });
}

function usPerPage(withMetrics: boolean, pages: number): number {
  const bus = new EventBus();
  const stats = new CrawlStats(bus);
  const metrics = withMetrics ? new EngineMetrics(bus, { nodeId: "bench" }) : undefined;
  const t0 = performance.now();
  for (let i = 0; i < pages; i++) emitPage(bus, i);
  const us = ((performance.now() - t0) * 1000) / pages;
  metrics?.stop();
  stats.stop();
  return us;
}

/** Median µs per page without and with the metrics subscriber (interleaved runs). */
export function metricsCostPerPage(pages = 100_000, runs = 7): { withoutUs: number; withUs: number; costUs: number } {
  usPerPage(false, pages);
  usPerPage(true, pages); // warm-up
  const off: number[] = [];
  const on: number[] = [];
  for (let r = 0; r < runs; r++) {
    off.push(usPerPage(false, pages));
    on.push(usPerPage(true, pages));
  }
  const med = (a: number[]) => a.sort((x, y) => x - y)[Math.floor(a.length / 2)]!;
  return { withoutUs: med(off), withUs: med(on), costUs: med(on) - med(off) };
}
