import type { Priority, Topic } from "../model/index.ts";

/** Everything that happens in a crawl, as data. Stages emit; displays, metrics and logs subscribe. */
export type CrawlEvent =
  | { type: "worker_started"; workerId: string; roles: string[] }
  | { type: "worker_stopping"; workerId: string; reason: string }
  | { type: "worker_stopped"; workerId: string }
  | { type: "task_received"; module: string | null; runId: string }
  | { type: "requests_generated"; module: string; count: number; duplicates: number }
  | { type: "request_sent"; url: string; module: string; attempt: number }
  /** `runId`: the run the page belongs to (counted per run in distributed mode) */
  | { type: "response_received"; url: string; module: string; status: number; bytes: number; ms: number; fromCache: boolean; runId?: string }
  | { type: "http_error"; url: string; module: string; status: number; runId?: string }
  /** `ms`: how long the sink took to make them durable */
  | { type: "items_stored"; module: string; count: number; ms?: number; runId?: string }
  /** a module's parse() ran on a page, taking `ms` */
  | { type: "page_parsed"; module: string; ms: number }
  | { type: "requests_enqueued"; topic: Topic; accepted: number; duplicates: number }
  /** `stage`: where it failed */
  | { type: "retry_scheduled"; topic: Topic; reason: string; attempt: number; delayMs: number; url?: string; stage?: string }
  /** a politeness wait (suspension, circuit, lease, robots.txt, long rate wait, 429 + Retry-After) re-queued the message without spending an attempt */
  | { type: "deferred"; topic: Topic; reason: string; attempt: number; delayMs: number; url?: string }
  | { type: "dead_lettered"; topic: Topic; reason: string; url?: string; stage?: string }
  | { type: "message_acked"; topic: Topic; priority: Priority }
  | { type: "rate_limited"; key: string; waitMs: number }
  /** a 429/503 lowered the key's rate to `factor` x its configured rate (`rate` req/s, 0 = unlimited) */
  | { type: "rate_backoff"; key: string; status: number; factor: number; rate: number }
  /** successes raised the key's rate back towards its configured rate */
  | { type: "rate_recovered"; key: string; factor: number; rate: number }
  /** the key's requests are held back for `ms` (Retry-After, or an open circuit) */
  | { type: "key_suspended"; key: string; ms: number; reason: string }
  /** `failures` consecutive connection failures/timeouts: the key is held back for `ms` */
  | { type: "circuit_opened"; key: string; failures: number; ms: number }
  /** a request on a key whose circuit had opened succeeded again */
  | { type: "circuit_closed"; key: string }
  /** robots.txt forbids this URL: acked, never requested */
  | { type: "robots_disallowed"; url: string; module: string }
  /** robots.txt could not be read (5xx, 429, network): the origin is held back for `retryMs` */
  | { type: "robots_unavailable"; origin: string; reason: string; retryMs: number }
  /** a failing proxy left the rotation for `ms` (`proxy` is host:port, never credentials) */
  | { type: "proxy_evicted"; proxy: string; reason: string; ms: number }
  | { type: "proxy_restored"; proxy: string }
  /** served from a cache without asking the server (`kind`: "response", ...) */
  | { type: "cache_hit"; kind: string; url: string; module: string }
  /** a data middleware dropped an item (`middleware` names it) */
  | { type: "item_dropped"; module: string; middleware: string; reason: string; url: string }
  /** a download middleware skipped a request before it was sent, or dropped its response */
  | { type: "request_skipped"; module: string; middleware: string; url: string; stage: "before_request" | "after_response" }
  /** a middleware threw: the message goes to the dead letters (download/data) or is retried (store) */
  | { type: "middleware_error"; chain: "download" | "data" | "store"; middleware: string; module: string; message: string; url?: string }
  /** a coordination lock was lost before its holder released it (lease ran out) */
  | { type: "lock_lost"; lock: string }
  /** this worker became leader (`<name>:leader:cron`) for this term */
  | { type: "leader_elected"; workerId: string; term: number }
  | { type: "leader_lost"; workerId: string; term: number }
  /** a cron tick's task was submitted (`lateMs` > 0: made up after a failover or pause) */
  | { type: "schedule_submitted"; module: string; tick: number; runId: string; lateMs: number }
  /** ticks missed by more than scheduler.misfire_tolerance_secs were skipped */
  | { type: "schedule_skipped"; module: string; ticks: number; from: number; to: number; reason: string }
  /** the queue's command connection to Redis was lost / is back (after `downMs`) */
  | { type: "redis_unreachable"; endpoint: string; reason: string }
  | { type: "redis_reconnected"; endpoint: string; downMs: number }
  /** the fleet-wide pause flag changed: `scope` is "all" or a module name */
  | { type: "paused"; scope: string }
  | { type: "resumed"; scope: string }
  /** links a parse() asked for that are not crawled, per domain and reason (`example`: one of them) */
  | { type: "links_dropped"; module: string; domain: string; reason: string; count: number; example: string }
  /** a body of a type the module did not ask for (`contentTypes`): acked without parse() */
  | { type: "content_skipped"; url: string; module: string; contentType: string }
  /** a 3xx turned into a request for its Location */
  | { type: "redirected"; from: string; to: string; status: number; module: string }
  /** a run spent `budget` (max_requests / max_items): it enqueues and downloads nothing new */
  | { type: "budget_spent"; module: string; runId: string; budget: "max_requests" | "max_items"; limit: number }
  /** requests not enqueued (beyond max_depth) or not downloaded (their run's budget is spent) */
  | { type: "bounded"; module: string; bound: "max_depth" | "budget"; count: number; url?: string }
  /** a page rendered in the browser (`subresources`: requests its scripts made; `learned`: "auto" rendered without checking) */
  | { type: "page_rendered"; url: string; module: string; ms: number; subresources: number; learned: boolean }
  /** a file the crawl writes (items, frontier, dead letters) could not be written: the crawl stops */
  | { type: "write_fault"; path: string; message: string }
  | { type: "warning"; message: string }
  | { type: "error"; stage: string; message: string };

export type CrawlEventType = CrawlEvent["type"];
export type EventOf<T extends CrawlEventType> = Extract<CrawlEvent, { type: T }>;
