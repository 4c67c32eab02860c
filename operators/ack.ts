import type { OperatorFunction } from "rxjs";
import type { EventBus } from "../src/events/bus.ts";
import { type Job, type Message, mergeJobs } from "./job.ts";

/**
 * Acks every successful job's message (its outputs are durable by now); failures pass on. A
 * failed ack is a failure of that message only, never of the flow: it is reported and the
 * entry stays pending, so the queue re-delivers it (Redis: reclaimed after claim_min_idle),
 * which dedup and the idempotent sinks make harmless.
 */
export function ack<T>(options: { events?: EventBus } = {}): OperatorFunction<Job<T>, Job<T>> {
  return mergeJobs((job: Job<T>): Job<T> | Promise<Job<T>> => (job.ok ? ackOrReport(job.message, options.events).then(() => job) : job));
}

/** Acks `message` (Message.ack retries briefly); a final failure becomes an `error` event. */
export function ackOrReport(message: Message, events?: EventBus): Promise<void> {
  return message.ack().catch((err: unknown) => {
    const why = err instanceof Error ? err.message : String(err);
    events?.emit({ type: "error", stage: "ack", message: `could not ack a ${message.delivery.topic} message (it stays pending and will be re-delivered): ${why}` });
  });
}
