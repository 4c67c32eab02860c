// src/engine/run-counts.ts: a worker's share of its runs' figures (pages, items, bytes, HTTP
// statuses), counted from its events into the Redis queue's per-run counts (runs.ts), which
// go out with its next ack batch.

import type { EventBus } from "../events/bus.ts";
import type { RedisQueue } from "../queue/redis/index.ts";

/** Starts counting; returns the function that stops it. */
export function countRuns(events: EventBus, queue: Pick<RedisQueue, "countForRun">): () => void {
  return events.listen(["response_received", "items_stored", "http_error"], (e) => {
    switch (e.type) {
      case "response_received":
        if (e.runId === undefined) return;
        queue.countForRun(e.runId, "pages");
        queue.countForRun(e.runId, "bytes", e.bytes);
        queue.countForRun(e.runId, `status:${e.status}`);
        break;
      case "items_stored":
        if (e.runId !== undefined) queue.countForRun(e.runId, "items", e.count);
        break;
      case "http_error":
        if (e.runId !== undefined) queue.countForRun(e.runId, "http_errors");
        break;
    }
  });
}
