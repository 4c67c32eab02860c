/** The answer to "may I send a request for this key now?". */
export type Reservation =
  /** go after waiting `waitMs` (the slot is reserved) */
  | { ok: true; waitMs: number }
  /** the wait would exceed max_wait: nothing reserved; come back after `retryAfterMs` */
  | { ok: false; retryAfterMs: number };

/**
 * A smooth rate limiter (GCRA): each key gets at most `ratePerSec` evenly spaced slots. The
 * in-memory one serves one process; a Redis one (same algorithm, Redis TIME) serves many.
 */
export interface RateLimiter {
  reserve(key: string, ratePerSec: number, maxWaitMs: number): Promise<Reservation>;
}
