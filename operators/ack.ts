import { mergeMap, type OperatorFunction } from "rxjs";
import type { EventBus } from "../src/events/bus.ts";
import type { Job, Message } from "./job.ts";

/**
 * Acks every successful job's message (its outputs are durable by now); failures pass on. A
 * failed ack is a failure of that message only, never of the flow: it is reported and the
 * entry stays pending, so the queue re-delivers it (Redis: reclaimed after claim_min_idle),
 * which dedup and the idempotent sinks make harmless.
 */
export function ack<T>(options: { events?: EventBus } = {}): OperatorFunction<Job<T>, Job<T>> {
  return mergeMap(async (job: Job<T>) => {
    if (job.ok) await ackOrReport(job.message, options.events);
    return job;
  });
}

/** Acks `message` (Message.ack retries briefly); a final failure becomes an `error` event. */
export async function ackOrReport(message: Message, events?: EventBus): Promise<void> {
  try {
    await message.ack();
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    events?.emit({ type: "error", stage: "ack", message: `could not ack a ${message.delivery.topic} message (it stays pending and will be re-delivered): ${why}` });
  }
}
