import type { OperatorFunction } from "rxjs";
import type { CrawlBounds } from "../src/bounds/bounds.ts";
import type { EventBus } from "../src/events/bus.ts";
import { enqueueRequests } from "../src/queue/enqueue-requests.ts";
import type { Queue } from "../src/queue/queue.ts";
import { type Job, mapJob, StageError } from "./job.ts";
import type { Parsed } from "./parse.ts";

/**
 * Publishes a page's follow-up requests (deduplicated by fingerprint, atomically with the
 * enqueue) and its parser tasks, and waits until the queue has accepted them. With `bounds`,
 * follow-ups get their depth and those beyond max_depth or a spent budget are left out.
 */
export function toQueue(queue: Queue, options: { events?: EventBus; bounds?: CrawlBounds } = {}): OperatorFunction<Job<Parsed>, Job<Parsed>> {
  return mapJob("to_queue", async (parsed: Parsed) => {
    const { tasks } = parsed.output;
    try {
      const requests = options.bounds
        ? await options.bounds.followUps(parsed.response, parsed.output.requests, parsed.output.items.length, parsed.url)
        : parsed.output.requests;
      // follow-ups parse() left out as seen before are duplicates the queue did not have to drop
      const seenBefore = parsed.output.seenBefore ?? 0;
      if (requests.length > 0) {
        const r = await enqueueRequests(queue, requests);
        options.events?.emit({ type: "requests_enqueued", topic: "request", accepted: r.accepted, duplicates: r.duplicates + seenBefore });
      } else if (seenBefore > 0) {
        options.events?.emit({ type: "requests_enqueued", topic: "request", accepted: 0, duplicates: seenBefore });
      }
      if (tasks.length > 0) {
        const r = await queue.publish("parser_task", tasks.map((t) => ({ message: t, dedupKey: `parser_task:${t.id}` })));
        options.events?.emit({ type: "requests_enqueued", topic: "parser_task", accepted: r.accepted, duplicates: r.duplicates });
      }
    } catch (err) {
      throw new StageError({ stage: "to_queue", reason: `enqueue failed: ${err instanceof Error ? err.message : String(err)}`, retryable: true, url: parsed.url });
    }
    return parsed;
  });
}
