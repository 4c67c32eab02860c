import { type OperatorFunction, pipe } from "rxjs";
import type { CrawlBounds } from "../src/bounds/bounds.ts";
import type { EventBus } from "../src/events/bus.ts";
import type { MiddlewareChains } from "../src/middleware/chains.ts";
import type { Queue } from "../src/queue/queue.ts";
import type { ItemSink } from "../src/storage/sink.ts";
import { ack } from "./ack.ts";
import { applyDataMiddleware } from "./apply-data-middleware.ts";
import type { Job } from "./job.ts";
import type { Parsed } from "./parse.ts";
import { sink } from "./sink.ts";
import { toQueue } from "./to-queue.ts";

/**
 * Sends a parsed page's outputs where they belong (items → sink, requests and parser tasks →
 * queue, within `bounds` when given) and acks the message once all of it is durable. With data
 * middleware registered, the items pass through it first (the stage is left out when there is none).
 */
export function route(targets: {
  sink: ItemSink;
  queue: Queue;
  events?: EventBus;
  bounds?: CrawlBounds;
  middleware?: MiddlewareChains;
  /** `output.max_item_bytes`: an item with more JSON dead-letters its page */
  maxItemBytes?: number;
}): OperatorFunction<Job<Parsed>, Job<Parsed>> {
  const stored = pipe(sink(targets.sink, targets), toQueue(targets.queue, targets), ack(targets));
  return targets.middleware?.anyData ? pipe(applyDataMiddleware(targets.middleware, targets), stored) : stored;
}
