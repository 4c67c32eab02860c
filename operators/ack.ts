import { mergeMap, type OperatorFunction } from "rxjs";
import type { Job } from "./job.ts";

/** Acks every successful job's message (its outputs are durable by now); failures pass on. */
export function ack<T>(): OperatorFunction<Job<T>, Job<T>> {
  return mergeMap(async (job: Job<T>) => {
    if (job.ok) await job.message.ack();
    return job;
  });
}
