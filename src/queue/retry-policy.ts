/** When and how often a failed message is tried again. */
export interface RetryPolicy {
  /** deliveries of a failing message before it is dead-lettered (request_max_retries) */
  maxRetries: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

/**
 * Exponential backoff with "equal jitter": the n-th retry waits between half and all of
 * min(max, base·2^(n-1)), so retries of many messages spread out. A server's Retry-After wins
 * when it asks for longer.
 */
export function retryDelay(policy: RetryPolicy, attempt: number, retryAfterMs?: number, random = Math.random): number {
  const exp = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, attempt - 1));
  const jittered = exp / 2 + random() * (exp / 2);
  return Math.round(retryAfterMs !== undefined ? Math.max(retryAfterMs, jittered) : jittered);
}
