// src/queue/failure.ts: why a delivery failed and what the queue should do with it (retry,
// defer, dead-letter, drop). Stages produce it; the retry policy and the politeness gate read it.

import type { Topic, TopicMessages } from "../model/index.ts";

/** Why a message failed in some stage, and what should happen to it. */
export interface Failure {
  stage: string;
  reason: string;
  /** false: retrying cannot help (404, parse bug); the message is dead-lettered or dropped */
  retryable: boolean;
  /** a server's Retry-After, in ms */
  retryAfterMs?: number;
  /** an expected outcome (e.g. HTTP 404): ack and report, do not dead-letter */
  drop?: boolean;
  /**
   * not a failure of the message but a politeness wait (suspension, circuit, lease, robots.txt
   * fetch, rate wait over max_wait, 429 with Retry-After): deferred — re-queued after
   * retryAfterMs without counting a delivery attempt
   */
  requeue?: boolean;
  /** dead-letter this derived message instead of the delivery's own (e.g. the Response that failed parsing) */
  deadLetter?: { topic: Topic; message: TopicMessages[Topic] };
  url?: string;
}
