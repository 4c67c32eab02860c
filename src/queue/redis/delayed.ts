// src/queue/redis/delayed.ts: the mover of delayed retries. retry-later.lua parks a payload in
// the topic's sorted set `<name>:delayed:<topic>` scored by its due time (Redis TIME, ms);
// move-due.lua re-appends due entries to their streams atomically. Every worker runs a mover:
// it sleeps until the earliest due time it knows of, but at most `pollMs` (retries parked by
// other workers are noticed within that), and its own retries wake it directly.
//
// Bound of the delayed sets: one member per message waiting for a retry (payload + ~60 bytes);
// each member leaves the set when due, so the sets hold at most the retries of the last
// retry_max_delay_ms.

import type { Redis } from "ioredis";
import { TOPICS, type Topic } from "../../model/index.ts";
import type { QueueKeys } from "./keys.ts";
import { queueScripts } from "./scripts.ts";

export interface DelayedMoverOptions {
  /** longest sleep between two looks (ms) */
  pollMs: number;
  /** most entries moved per topic per call */
  batch: number;
}

export class DelayedMover {
  private timer: ReturnType<typeof setTimeout> | undefined;
  private timerDue = Infinity;
  private running = false;
  private again = false;
  private stopped = true;
  private readonly streamsOf = new Map<Topic, string[]>();

  constructor(
    private readonly conn: Redis,
    private readonly keys: QueueKeys,
    private readonly options: DelayedMoverOptions,
    private readonly onError: (err: unknown) => void,
  ) {
    for (const t of TOPICS) this.streamsOf.set(t, keys.streams(t).map((s) => s.key));
  }

  start(): void {
    this.stopped = false;
    this.wake(0);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.timerDue = Infinity;
  }

  /** Look again in `afterMs` (sooner than planned only). */
  wake(afterMs: number): void {
    if (this.stopped) return;
    const due = Date.now() + Math.max(0, afterMs);
    if (due >= this.timerDue) return;
    if (this.running) {
      if (afterMs <= 0) this.again = true;
      else this.schedule(afterMs);
      return;
    }
    this.schedule(afterMs);
  }

  private schedule(afterMs: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.timerDue = Date.now() + afterMs;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.timerDue = Infinity;
      void this.tick();
    }, afterMs);
    unref(this.timer);
  }

  private async tick(): Promise<void> {
    if (this.stopped || this.running) return;
    this.running = true;
    let next = this.options.pollMs;
    try {
      const pipe = this.conn.pipeline();
      for (const t of TOPICS) queueScripts.pipe(pipe, "moveDue", [this.keys.delayed(t), ...this.streamsOf.get(t)!], [this.keys.group, this.options.batch]);
      const results = (await pipe.exec()) ?? [];
      for (const [err, reply] of results) {
        if (err) throw err;
        const [moved, wait] = reply as [number, number];
        if (moved >= this.options.batch) next = 0; // more are due: go on at once
        else if (wait >= 0) next = Math.min(next, wait);
      }
    } catch (err) {
      if (!this.stopped) this.onError(err);
    } finally {
      this.running = false;
    }
    if (this.again) {
      this.again = false;
      next = 0;
    }
    if (!this.stopped && (this.timer === undefined || Date.now() + next < this.timerDue)) this.schedule(next);
  }
}

/** Lets the process exit while only this timer is left (Node); a no-op where timers are numbers. */
export function unref(timer: unknown): void {
  (timer as { unref?: () => void } | undefined)?.unref?.();
}
