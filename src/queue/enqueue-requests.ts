import { fingerprint, type Request } from "../model/index.ts";
import type { PublishResult, Queue } from "./queue.ts";

/** Enqueues requests deduplicated by mocra's fingerprint (seen-check and enqueue in one step). */
export function enqueueRequests(queue: Queue, requests: readonly Request[]): Promise<PublishResult> {
  return queue.publish(
    "request",
    requests.map((req) => ({ message: req, dedupKey: fingerprint(req) })),
  );
}
