// src/observe/logger.ts: log lines on stderr, at levels, as text or JSON lines; and the EventBus
// subscriber that turns crawl events into them. Text from the network is escaped.

import { stderr } from "node:process";
import type { LogLevel, LoggerConfig } from "../config/schema.ts";
import type { EventBus } from "../events/bus.ts";
import type { CrawlEvent, CrawlEventType } from "../events/events.ts";
import { printable } from "../text/printable.ts";

export const LOG_LEVELS: readonly LogLevel[] = ["debug", "info", "warn", "error"];

export function isLogLevel(v: string): v is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(v);
}

export type LogFields = Record<string, string | number | boolean | undefined>;

export class Logger {
  private readonly min: number;
  private write: (line: string) => void;

  constructor(
    readonly config: LoggerConfig,
    write: (line: string) => void = (l) => void stderr.write(l),
  ) {
    this.min = config.enabled ? LOG_LEVELS.indexOf(config.level) : LOG_LEVELS.length;
    this.write = write;
  }

  enabled(level: LogLevel): boolean {
    return LOG_LEVELS.indexOf(level) >= this.min;
  }

  /** Routes every line through `wrap` (a live progress line clears and redraws around it). */
  wrapWrite(wrap: (line: string, write: (line: string) => void) => void): void {
    const inner = this.write;
    this.write = (line) => wrap(line, inner);
  }

  log(level: LogLevel, msg: string, fields: LogFields = {}): void {
    if (!this.enabled(level)) return;
    if (this.config.format === "json") {
      // JSON.stringify escapes every control character itself
      this.write(`${JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields })}\n`);
      return;
    }
    let line = `${level === "info" ? "" : `${level === "warn" ? "warning" : level}: `}${printable(msg)}`;
    for (const [k, v] of Object.entries(fields)) if (v !== undefined) line += ` ${k}=${printable(String(v))}`;
    this.write(`${line}\n`);
  }

  /** A line printed whatever the level (a run's summary), in the configured format. */
  print(msg: string): void {
    if (this.config.format === "json") this.write(`${JSON.stringify({ time: new Date().toISOString(), level: "info", msg })}\n`);
    else this.write(`${msg}\n`);
  }

  debug(msg: string, fields?: LogFields): void {
    this.log("debug", msg, fields);
  }
  info(msg: string, fields?: LogFields): void {
    this.log("info", msg, fields);
  }
  warn(msg: string, fields?: LogFields): void {
    this.log("warn", msg, fields);
  }
  error(msg: string, fields?: LogFields): void {
    this.log("error", msg, fields);
  }
}

/** The event types lineOf() has a line for. */
const LOGGED: readonly CrawlEventType[] = [
  "worker_started",
  "worker_stopping",
  "worker_stopped",
  "request_sent",
  "response_received",
  "http_error",
  "retry_scheduled",
  "deferred",
  "budget_spent",
  "dead_lettered",
  "rate_backoff",
  "rate_recovered",
  "key_suspended",
  "circuit_opened",
  "circuit_closed",
  "robots_unavailable",
  "proxy_evicted",
  "proxy_restored",
  "redis_unreachable",
  "redis_reconnected",
  "paused",
  "resumed",
  "warning",
  "error",
];

/** Per-page events logged at debug only: not even built for the logger below that level. */
const DEBUG_ONLY = new Set<CrawlEventType>(["request_sent", "response_received", "message_acked"]);

/** One line for an event worth a line, with its level; undefined for the rest. */
function lineOf(e: CrawlEvent): [LogLevel, string, LogFields?] | undefined {
  switch (e.type) {
    case "worker_started":
      return ["info", `worker ${e.workerId} started`, { roles: e.roles.join(",") }];
    case "worker_stopping":
      return ["info", `worker ${e.workerId} stopping: ${e.reason}`];
    case "worker_stopped":
      return ["debug", `worker ${e.workerId} stopped`];
    case "request_sent":
      return ["debug", `GET ${e.url}`, { module: e.module, attempt: e.attempt }];
    case "response_received":
      return ["debug", `${e.status} ${e.url}`, { module: e.module, bytes: e.bytes, ms: Math.round(e.ms) }];
    case "http_error":
      return ["debug", `HTTP ${e.status} ${e.url} (dropped)`, { module: e.module }];
    case "retry_scheduled":
      return ["debug", `retry ${e.topic} in ${Math.round(e.delayMs)} ms: ${e.reason}`, { url: e.url, attempt: e.attempt }];
    case "deferred":
      return ["debug", `deferred ${e.topic} by ${Math.round(e.delayMs)} ms: ${e.reason}`, { url: e.url }];
    case "budget_spent":
      return ["info", `${e.budget} ${e.limit} reached for module ${e.module}: no new requests for this run; in-flight work finishes`];
    case "dead_lettered":
      return ["info", `dead letter (${e.topic}): ${e.reason}`, { url: e.url }];
    case "rate_backoff":
      return ["info", `rate of ${e.key} backed off to ${e.rate.toFixed(2)} req/s after HTTP ${e.status}`];
    case "rate_recovered":
      return ["debug", `rate of ${e.key} recovering: ${e.rate.toFixed(2)} req/s`];
    case "key_suspended":
      return ["info", `${e.key} held back for ${Math.round(e.ms)} ms: ${e.reason}`];
    case "circuit_opened":
      return ["warn", `circuit of ${e.key} open for ${Math.round(e.ms)} ms after ${e.failures} failures`];
    case "circuit_closed":
      return ["info", `circuit of ${e.key} closed`];
    case "robots_unavailable":
      return ["info", `robots.txt of ${e.origin} unreadable (${e.reason}); retrying in ${Math.round(e.retryMs)} ms`];
    case "proxy_evicted":
      return ["warn", `proxy ${e.proxy} evicted for ${Math.round(e.ms)} ms: ${e.reason}`];
    case "proxy_restored":
      return ["info", `proxy ${e.proxy} back in rotation`];
    case "redis_unreachable":
      return ["warn", `Redis at ${e.endpoint} unreachable (${e.reason}): consumption paused, reconnecting`];
    case "redis_reconnected":
      return ["info", `Redis at ${e.endpoint} reachable again after ${(e.downMs / 1000).toFixed(1)} s`];
    case "paused":
      return ["info", e.scope === "all" ? "crawl paused: no new work is taken" : `module ${e.scope} paused`];
    case "resumed":
      return ["info", e.scope === "all" ? "crawl resumed" : `module ${e.scope} resumed`];
    case "warning":
      return ["warn", e.message];
    case "error":
      return ["error", `[${e.stage}] ${e.message}`];
    default:
      return undefined;
  }
}

/** What the live progress prints itself (once per host, once per budget): left to it when it runs. */
const PROGRESS_LINES = new Set<string>(["warning", "error", "circuit_opened", "budget_spent"]);

/**
 * Logs the crawl's events (a subscriber of the bus). Debug lines cost nothing unless enabled.
 * `progress`: a showProgress with this logger runs too, and prints warnings, errors, opened
 * circuits and spent budgets itself.
 */
export function logEvents(bus: EventBus, logger: Logger, options: { progress?: boolean } = {}): () => void {
  const debug = logger.enabled("debug");
  const types = LOGGED.filter((t) => (debug || !DEBUG_ONLY.has(t)) && !(options.progress && PROGRESS_LINES.has(t)));
  return bus.listen(types, (e) => {
    const l = lineOf(e);
    if (l) logger.log(l[0], l[1], l[2]);
  });
}
