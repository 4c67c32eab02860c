import type { OperatorFunction } from "rxjs";
import type { EventBus } from "../src/events/bus.ts";
import { FileWriteFault } from "../src/state/errors.ts";
import { itemTexts, UnstorableItemError } from "../src/storage/item-text.ts";
import type { ItemBatch, ItemSink } from "../src/storage/sink.ts";
import { type Job, mapJob, StageError } from "./job.ts";
import type { Parsed } from "./parse.ts";

/**
 * Hands each page's items to the sink and waits until they are durable. Items are keyed by the
 * request fingerprint, so a redelivered page adds no second copy. An item no sink can store (a
 * BigInt, a cycle, over `maxItemBytes` of JSON) dead-letters its page with the reason at once
 * (with the Response, as a failed parse does); nothing of it counts as stored. A file that cannot
 * be written (a full disk) is announced as a `write_fault` event: the crawl stops.
 */
export function sink(itemSink: ItemSink, options: { events?: EventBus; maxItemBytes?: number } = {}): OperatorFunction<Job<Parsed>, Job<Parsed>> {
  return mapJob("sink", async (parsed: Parsed) => {
    const { items } = parsed.output;
    if (items.length === 0) return parsed;
    let stored: boolean;
    const started = performance.now();
    const batch: ItemBatch = { module: parsed.module, fingerprint: parsed.fingerprint, items, runId: parsed.response.runId, url: parsed.url };
    try {
      itemTexts(batch, options.maxItemBytes); // once per page, shared by every sink that stores it
      stored = await itemSink.write(batch);
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      if (err instanceof UnstorableItemError || (err instanceof Error && err.cause instanceof UnstorableItemError)) {
        throw new StageError({ stage: "sink", reason: `unstorable item: ${why}`, retryable: false, deadLetter: { topic: "response", message: parsed.response }, url: parsed.url });
      }
      const fault = err instanceof FileWriteFault ? err : err instanceof Error && err.cause instanceof FileWriteFault ? err.cause : undefined;
      if (fault) options.events?.emit({ type: "write_fault", path: fault.path, message: fault.message });
      throw new StageError({ stage: "sink", reason: `sink failed: ${why}`, retryable: true, url: parsed.url });
    }
    if (stored) options.events?.emit({ type: "items_stored", module: parsed.module, count: items.length, ms: performance.now() - started, runId: parsed.response.runId });
    return parsed;
  });
}
