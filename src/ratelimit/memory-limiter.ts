import type { RateLimiter, Reservation } from "./limiter.ts";

/**
 * GCRA with reservation, in memory: a key's theoretical arrival time (TAT) advances one
 * interval per request; a caller waits TAT - now. Zero burst tolerance, so requests are evenly
 * spaced. Idle keys are forgotten after a minute.
 */
export class MemoryRateLimiter implements RateLimiter {
  private readonly tat = new Map<string, number>();
  private lastSweep = 0;

  reserve(key: string, ratePerSec: number, maxWaitMs: number): Promise<Reservation> {
    if (!(ratePerSec > 0)) return Promise.resolve({ ok: true, waitMs: 0 });
    const now = performance.now();
    this.sweep(now);
    const interval = 1000 / ratePerSec;
    const start = Math.max(this.tat.get(key) ?? now, now);
    const waitMs = start - now;
    if (waitMs > maxWaitMs) return Promise.resolve({ ok: false, retryAfterMs: Math.ceil(waitMs) });
    this.tat.set(key, start + interval);
    return Promise.resolve({ ok: true, waitMs });
  }

  private sweep(now: number): void {
    if (now - this.lastSweep < 60_000) return;
    this.lastSweep = now;
    for (const [k, t] of this.tat) if (t < now - 60_000) this.tat.delete(k);
  }
}
