import { Observable } from "rxjs";
import type { PauseGate } from "../src/control/pause.ts";
import type { Topic, TopicMessages } from "../src/model/index.ts";
import type { CreditMeter } from "../src/observe/credit.ts";
import type { Queue } from "../src/queue/queue.ts";
import { type Job, Message, ok } from "./job.ts";

export interface FromQueueOptions {
  /** credit: at most this many un-settled messages out at once */
  prefetch: number;
  /** how long one read waits when the queue is empty (ms) */
  blockMs?: number;
  /** aborting stops reading; the observable completes once every message out is settled */
  signal?: AbortSignal;
  /**
   * Every this many ms, touch (queue.touch: Redis XCLAIM ... JUSTID) the messages out for at
   * least that long, so a slow page is not reclaimed by another worker while it is still being
   * worked on. Set it below the queue's claim idle time (the flows use half of claim_min_idle).
   * 0 or absent: never touch.
   */
  touchEveryMs?: number;
  /** while `pause.paused`, nothing new is read (messages already out still finish) */
  pause?: PauseGate;
  /** reports the credit in use when asked (metrics, dashboard); nothing is done per message */
  credit?: CreditMeter;
}

/**
 * Reads `topic` with credit-based backpressure: it asks the queue for exactly its free credit
 * and reads again only when downstream settles messages. Memory is O(prefetch), whatever the
 * queue's length.
 */
export function fromQueue<K extends Topic>(
  queue: Queue,
  topic: K,
  options: FromQueueOptions,
): Observable<Job<TopicMessages[K]>> {
  const { prefetch, blockMs = 1000, signal, touchEveryMs = 0, pause } = options;
  if (!(prefetch >= 1)) throw new RangeError(`fromQueue: prefetch must be >= 1, got ${prefetch}`);
  return new Observable((subscriber) => {
    let outstanding = 0;
    let wakeReader: (() => void) | undefined;
    let stopped = false;
    /** messages out, with when they were emitted or last touched (only kept when touching) */
    const out = new Map<Message<Topic>, number>();
    const touchTimer = touchEveryMs > 0 ? setInterval(() => touchLongRunning(), touchEveryMs) : undefined;
    const touchLongRunning = () => {
      const now = Date.now();
      const due: Message<Topic>[] = [];
      for (const [m, since] of out) if (now - since >= touchEveryMs) due.push(m);
      if (due.length === 0) return;
      for (const m of due) out.set(m, now);
      // a failed touch only risks an early reclaim (re-delivery is harmless): nothing to stop for
      queue.touch(due.map((m) => m.delivery)).catch(() => {});
    };

    const wake = () => {
      const w = wakeReader;
      wakeReader = undefined;
      w?.();
    };
    const onSettled = (message: Message<Topic>) => {
      out.delete(message);
      outstanding--;
      if (stopped && outstanding === 0) subscriber.complete();
      else wake();
    };
    const onAbort = () => {
      stopped = true;
      if (outstanding === 0) subscriber.complete();
      wake();
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    const unregister = options.credit?.register(topic, prefetch, () => outstanding);

    (async () => {
      while (!stopped && !subscriber.closed && !signal?.aborted) {
        const free = prefetch - outstanding;
        if (free <= 0) {
          await new Promise<void>((resolve) => (wakeReader = resolve));
          continue;
        }
        if (pause?.paused) {
          // woken by the next change of the flags, or by stop
          await new Promise<void>((resolve) => {
            wakeReader = resolve;
            void pause.changed().then(wake);
          });
          continue;
        }
        const deliveries = await queue.read(topic, free, blockMs);
        for (const delivery of deliveries) {
          // stopped meanwhile: leave it un-acked; the queue re-delivers it (Redis: reclaim)
          if (stopped || subscriber.closed) continue;
          outstanding++;
          const message: Message<Topic> = new Message<Topic>(delivery, queue, () => onSettled(message));
          if (touchTimer) out.set(message, Date.now());
          subscriber.next(ok(message, delivery.message));
        }
      }
      if (signal?.aborted) onAbort();
    })().catch((err: unknown) => subscriber.error(err));

    return () => {
      stopped = true;
      clearInterval(touchTimer);
      out.clear();
      unregister?.();
      signal?.removeEventListener("abort", onAbort);
      wake();
    };
  });
}
