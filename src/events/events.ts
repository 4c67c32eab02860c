import type { Priority, Topic } from "../model/index.ts";

/** Everything that happens in a crawl, as data. Stages emit; displays, metrics and logs subscribe. */
export type CrawlEvent =
  | { type: "worker_started"; workerId: string; roles: string[] }
  | { type: "worker_stopping"; workerId: string; reason: string }
  | { type: "worker_stopped"; workerId: string }
  | { type: "task_received"; module: string | null; runId: string }
  | { type: "requests_generated"; module: string; count: number; duplicates: number }
  | { type: "request_sent"; url: string; module: string; attempt: number }
  | { type: "response_received"; url: string; module: string; status: number; bytes: number; ms: number; fromCache: boolean }
  | { type: "http_error"; url: string; module: string; status: number }
  | { type: "items_stored"; module: string; count: number }
  | { type: "requests_enqueued"; topic: Topic; accepted: number; duplicates: number }
  | { type: "retry_scheduled"; topic: Topic; reason: string; attempt: number; delayMs: number; url?: string }
  | { type: "dead_lettered"; topic: Topic; reason: string; url?: string }
  | { type: "message_acked"; topic: Topic; priority: Priority }
  | { type: "rate_limited"; key: string; waitMs: number }
  | { type: "warning"; message: string }
  | { type: "error"; stage: string; message: string };

export type CrawlEventType = CrawlEvent["type"];
export type EventOf<T extends CrawlEventType> = Extract<CrawlEvent, { type: T }>;
