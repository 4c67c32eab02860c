import type { OperatorFunction } from "rxjs";
import type { EventBus } from "../src/events/bus.ts";
import type { ItemSink } from "../src/storage/sink.ts";
import { type Job, mapJob, StageError } from "./job.ts";
import type { Parsed } from "./parse.ts";

/**
 * Hands each page's items to the sink and waits until they are durable. Items are keyed by the
 * request fingerprint, so a redelivered page adds no second copy.
 */
export function sink(itemSink: ItemSink, options: { events?: EventBus } = {}): OperatorFunction<Job<Parsed>, Job<Parsed>> {
  return mapJob("sink", async (parsed: Parsed) => {
    const { items } = parsed.output;
    if (items.length === 0) return parsed;
    let stored: boolean;
    const started = performance.now();
    try {
      stored = await itemSink.write({ module: parsed.module, fingerprint: parsed.fingerprint, items, runId: parsed.response.runId, url: parsed.url });
    } catch (err) {
      throw new StageError({ stage: "sink", reason: `sink failed: ${err instanceof Error ? err.message : String(err)}`, retryable: true, url: parsed.url });
    }
    if (stored) options.events?.emit({ type: "items_stored", module: parsed.module, count: items.length, ms: performance.now() - started, runId: parsed.response.runId });
    return parsed;
  });
}
