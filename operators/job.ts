import { Observable, type OperatorFunction } from "rxjs";
import type { Topic, TopicMessages } from "../src/model/index.ts";
import type { Failure } from "../src/queue/failure.ts";
import type { Delivery, Queue } from "../src/queue/queue.ts";

export type { Failure } from "../src/queue/failure.ts";

/**
 * A queue delivery on its way through a flow. Settle it once (ack, retry, deadLetter); the
 * source that emitted it gets its credit back then. Settling twice is a no-op.
 */
export class Message<K extends Topic = Topic> {
  private settled = false;

  constructor(
    readonly delivery: Delivery<K>,
    private readonly queue: Queue,
    private readonly onSettled: () => void = () => {},
  ) {}

  get payload(): TopicMessages[K] {
    return this.delivery.message;
  }

  get isSettled(): boolean {
    return this.settled;
  }

  /** Acks; a rejected ack is tried again twice (after 100 and 400 ms) before it rejects. */
  ack(): Promise<void> {
    return this.settle(() => withRetries(() => this.queue.ack(this.delivery), [100, 400]));
  }

  retry(delayMs: number, reason: string): Promise<void> {
    return this.settle(() => this.queue.retryLater(this.delivery, delayMs, reason));
  }

  /** Re-queue after a politeness wait: not a failed delivery, the attempt count stays. */
  defer(delayMs: number, reason: string): Promise<void> {
    return this.settle(() => this.queue.defer(this.delivery, delayMs, reason));
  }

  deadLetter(reason: string): Promise<void> {
    return this.settle(() => this.queue.deadLetter(this.delivery, reason));
  }

  /** Dead-letter a message derived from this one (e.g. its Response), then ack this one. */
  deadLetterDerived<T extends Topic>(topic: T, derived: TopicMessages[T], reason: string): Promise<void> {
    return this.settle(async () => {
      await this.queue.deadLetterMessage(topic, derived, reason, this.delivery.entryId);
      await this.queue.ack(this.delivery);
    });
  }

  /** Keep this delivery from being reclaimed while it is still being worked on. */
  touch(): Promise<void> {
    return this.queue.touch([this.delivery]);
  }

  private settle(action: () => Promise<void>): Promise<void> {
    if (this.settled) return Promise.resolve();
    this.settled = true;
    // The credit comes back as soon as the settlement is handed to the queue: a backend may
    // batch acks for a few ms, and holding credit over that wait would idle the flow.
    const done = action();
    this.onSettled();
    return done;
  }
}

/** `action`, tried again after each of `pausesMs` while it rejects; the last rejection wins. */
function withRetries(action: () => Promise<void>, pausesMs: readonly number[], attempt = 0): Promise<void> {
  // the first try's Promise as it is (no async frame): acks succeed, the retries are the rare path
  let tried: Promise<void>;
  try {
    tried = action();
  } catch (err) {
    tried = Promise.reject(err); // as from an async function: settle() must not throw
  }
  if (attempt >= pausesMs.length) return tried;
  return tried.catch(() => new Promise((r) => setTimeout(r, pausesMs[attempt])).then(() => withRetries(action, pausesMs, attempt + 1)));
}

export type Job<T> =
  | { readonly ok: true; readonly message: Message; readonly value: T }
  | { readonly ok: false; readonly message: Message; readonly failure: Failure };

/** Thrown inside a stage to fail the message with a specific Failure. */
export class StageError extends Error {
  constructor(readonly failure: Failure) {
    super(failure.reason);
  }
}

export function ok<T>(message: Message, value: T): Job<T> {
  return { ok: true, message, value };
}

export function failed<T>(message: Message, failure: Failure): Job<T> {
  return { ok: false, message, failure };
}

/**
 * The building block of every stage: apply `fn` to successful jobs, at most `concurrency` at
 * a time, and pass failed jobs through. An exception from `fn` fails that job only (a
 * StageError keeps its Failure; anything else becomes a non-retryable failure of `stage`).
 * A plain value from `fn` (and a failed job) goes on at once; a Promise when it settles.
 */
export function mapJob<A, B>(
  stage: string,
  fn: (value: A, message: Message) => Promise<B> | B,
  concurrency = Infinity,
): OperatorFunction<Job<A>, Job<B>> {
  return mergeJobs((job: Job<A>): Job<B> | Promise<Job<B>> => {
    if (!job.ok) return job;
    let r: Promise<B> | B;
    try {
      r = fn(job.value, job.message);
    } catch (err) {
      return failed(job.message, toFailure(stage, err));
    }
    if (!isPromise(r)) return ok(job.message, r);
    return r.then(
      (value) => ok(job.message, value),
      (err: unknown) => failed(job.message, toFailure(stage, err)),
    );
  }, concurrency);
}

function isPromise<T>(value: T | Promise<T>): value is Promise<T> {
  return typeof (value as { then?: unknown } | null)?.then === "function";
}

/**
 * `mergeMap` for functions that return a value or a Promise of one, as the stages do: a value
 * goes on synchronously, a Promise's when it settles (then the next waiting input starts), at
 * most `concurrency` Promises pending. Unlike mergeMap it makes no inner Observable and
 * Subscription per input (what it does with a Promise): each stage costs a page one `then`, or
 * nothing when its result is ready. A throw or rejection from `fn` errors the stream, as there.
 */
export function mergeJobs<A, B>(fn: (value: A) => B | Promise<B>, concurrency = Infinity): OperatorFunction<A, B> {
  return (source) =>
    new Observable<B>((subscriber) => {
      let active = 0;
      let sourceDone = false;
      const waiting: A[] = [];
      const fail = (err: unknown) => subscriber.error(err);
      const completeIfDone = () => {
        if (sourceDone && active === 0 && waiting.length === 0) subscriber.complete();
      };
      const settled = (value: B) => {
        active--;
        if (!subscriber.closed) subscriber.next(value);
        while (waiting.length > 0 && active < concurrency && !subscriber.closed) run(waiting.shift()!);
        completeIfDone();
      };
      const run = (value: A) => {
        let r: B | Promise<B>;
        try {
          r = fn(value);
        } catch (err) {
          fail(err);
          return;
        }
        if (isPromise(r)) {
          active++;
          r.then(settled, fail);
        } else subscriber.next(r);
      };
      const subscription = source.subscribe({
        next: (value) => {
          if (active < concurrency) run(value);
          else waiting.push(value);
        },
        error: fail,
        complete: () => {
          sourceDone = true;
          completeIfDone();
        },
      });
      return () => subscription.unsubscribe();
    });
}

export function toFailure(stage: string, err: unknown): Failure {
  if (err instanceof StageError) return err.failure;
  const reason = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  return { stage, reason, retryable: false };
}
