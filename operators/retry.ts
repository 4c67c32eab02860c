import type { OperatorFunction } from "rxjs";
import type { EventBus } from "../src/events/bus.ts";
import { type RetryPolicy, retryDelay } from "../src/queue/retry-policy.ts";
import { type Failure, type Job, type Message, mergeJobs } from "./job.ts";

export interface RetryOptions {
  policy: RetryPolicy;
  /** per-message override of policy.maxRetries (e.g. a module's own setting) */
  maxRetriesOf?: (message: Message) => number | undefined;
  events?: EventBus;
}

/**
 * Settles failed jobs: an expected outcome is acked, a politeness wait is deferred (re-queued
 * without spending an attempt), a retryable failure is re-queued with a delay (backoff + jitter,
 * Retry-After honoured) until `maxRetries` deliveries, then — like a non-retryable failure —
 * dead-lettered with its reason. Successful jobs pass through.
 */
export function retry<T>(options: RetryOptions): OperatorFunction<Job<T>, Job<T>> {
  return mergeJobs((job: Job<T>): Job<T> | Promise<Job<T>> => (job.ok ? job : settleFailure(job.message, job.failure, options).then(() => job)));
}

/** Dead-letters every failed job at once, no retries. */
export function deadLetter<T>(options: { events?: EventBus } = {}): OperatorFunction<Job<T>, Job<T>> {
  return mergeJobs((job: Job<T>): Job<T> | Promise<Job<T>> =>
    job.ok
      ? job
      : sendToDeadLetters(job.message, job.failure, options.events).then(
          () => job,
          (err: unknown) => {
            reportUnsettled(job.message, err, options.events);
            return job;
          },
        ),
  );
}

async function settleFailure(message: Message, failure: Failure, o: RetryOptions): Promise<void> {
  const { topic } = message.delivery;
  try {
    if (failure.drop) {
      await message.ack();
      return;
    }
    const attempt = message.delivery.attempt;
    if (failure.requeue) {
      const delayMs = failure.retryAfterMs ?? o.policy.baseDelayMs;
      o.events?.emit({ type: "deferred", topic, reason: failure.reason, attempt, delayMs, url: failure.url });
      await message.defer(delayMs, failure.reason);
      return;
    }
    const max = o.maxRetriesOf?.(message) ?? o.policy.maxRetries;
    if (failure.retryable && attempt < max) {
      const delayMs = retryDelay(o.policy, attempt, failure.retryAfterMs);
      o.events?.emit({ type: "retry_scheduled", topic, reason: failure.reason, attempt, delayMs, url: failure.url, stage: failure.stage });
      await message.retry(delayMs, failure.reason);
      return;
    }
    await sendToDeadLetters(message, failure.retryable ? { ...failure, reason: `${failure.reason} (after ${attempt} attempts)` } : failure, o.events);
  } catch (err) {
    reportUnsettled(message, err, o.events);
  }
}

/** The queue itself failed (e.g. Redis down): the message stays un-acked and is re-delivered later. */
function reportUnsettled(message: Message, err: unknown, events?: EventBus): void {
  const why = err instanceof Error ? err.message : String(err);
  events?.emit({ type: "error", stage: "retry", message: `could not settle a failed ${message.delivery.topic} message: ${why}` });
}

async function sendToDeadLetters(message: Message, failure: Failure, events?: EventBus): Promise<void> {
  const topic = failure.deadLetter?.topic ?? message.delivery.topic;
  events?.emit({ type: "dead_lettered", topic, reason: failure.reason, url: failure.url, stage: failure.stage });
  if (failure.deadLetter) await message.deadLetterDerived(failure.deadLetter.topic, failure.deadLetter.message, failure.reason);
  else await message.deadLetter(failure.reason);
}
