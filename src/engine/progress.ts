import { stderr } from "node:process";
import { EventBus } from "../events/bus.ts";
import { type CountWithUrls, CrawlStats } from "../events/stats.ts";
// from its file, not the queue/redis barrel (which loads ioredis into a standalone crawl)
import { isFinished, type RunCounts } from "../queue/redis/runs.ts";
import type { LogLevel } from "../config/schema.ts";
import type { Logger } from "../observe/logger.ts";
import { printable } from "../text/printable.ts";

export interface ProgressOptions {
  /** seconds between plain log lines when not on a terminal */
  intervalSecs: number;
  /** queued messages now (ready + delayed), for display */
  queued: () => Promise<number>;
  /** redraw one status line (terminal) or print plain lines */
  tty?: boolean;
  write?: (text: string) => void;
  /** writes the lines (at their level, in its format); the terminal line is redrawn around them */
  logger?: Logger;
}

export interface SummaryOptions {
  /** the run's length (default: since the stats began) */
  elapsedSecs?: number;
  /** how it ended, the first word: "done" (default), "interrupted", ... */
  ended?: string;
}

function line(stats: CrawlStats, queued: number): string {
  return (
    `pages ${stats.pages}  items ${stats.items}  errors ${stats.httpErrors + stats.errors}  retries ${stats.retries}  deferred ${stats.deferred}` +
    `  dead ${stats.deadLetters}  ${stats.pagesPerSec.toFixed(1)} pages/s  queued ${queued}`
  );
}

/**
 * Live progress, a subscriber of the crawl's stats: on a terminal one line redrawn four times a
 * second, otherwise a plain line every `intervalSecs`. Warnings and errors are printed as they
 * come; a host whose circuit opens (connections refused, timeouts) once per host; a spent budget
 * once. Returns a function that stops it.
 */
export function showProgress(bus: EventBus, stats: CrawlStats, options: ProgressOptions): () => void {
  const tty = options.tty ?? Boolean(stderr.isTTY);
  const write = options.write ?? ((t: string) => void stderr.write(t));
  let last = "";
  const clear = () => {
    if (tty && last) write("\r\x1b[K");
  };
  const { logger } = options;
  let stopped = false;
  if (logger && tty) {
    logger.wrapWrite((text, inner) => {
      if (stopped) return inner(text);
      clear();
      inner(text);
      if (last) write(last);
    });
  }
  const say = (level: LogLevel, text: string) => {
    if (logger) return logger.log(level, text);
    clear();
    write(`${level === "warn" ? "warning: " : level === "error" ? "error: " : ""}${text}\n`);
    if (tty && last) write(last);
  };
  // a host refusing or timing out is said once per host, not once per request
  const backingOff = new Set<string>();
  const unlisten = bus.listen(["warning", "error", "circuit_opened", "budget_spent"], (e) => {
    if (e.type === "warning" || e.type === "error") {
      say(e.type === "error" ? "error" : "warn", `${"stage" in e ? `[${e.stage}] ` : ""}${printable(e.message)}`);
    } else if (e.type === "circuit_opened" && !backingOff.has(e.key)) {
      backingOff.add(e.key);
      say("warn", `host ${printable(e.key)} refusing connections or timing out (${e.failures} in a row); backing off for ${e.ms >= 1000 ? `${Math.round(e.ms / 1000)} s` : `${Math.round(e.ms)} ms`} at a time`);
    } else if (e.type === "budget_spent") {
      say("info", `${e.budget} ${e.limit} reached for module ${printable(e.module)}: no new requests for this run; in-flight work finishes`);
    }
  });
  const tick = async () => {
    const text = line(stats, await options.queued().catch(() => -1));
    if (tty) {
      last = text;
      write(`\r\x1b[K${text}`);
    } else if (logger) logger.info(`[progress] ${text}`);
    else write(`[progress] ${text}\n`);
  };
  const timer = setInterval(() => void tick(), tty ? 250 : options.intervalSecs * 1000);
  return () => {
    stopped = true;
    clearInterval(timer);
    unlisten();
    clear();
  };
}

/** The middleware line of the summary: items dropped (top reasons) and middleware errors; none when both are 0. */
function middlewareSummary(stats: CrawlStats): string[] {
  if (stats.dropped === 0 && stats.middlewareErrors === 0) return [];
  const top = [...stats.droppedReasons].sort((a, b) => b[1] - a[1]).slice(0, 3);
  const reasons = top.map(([r, n]) => `${n} ${printable(r)}`).join("; ");
  return [`middleware: ${stats.dropped} items dropped${reasons ? ` (${reasons}${stats.droppedReasons.size > 3 ? "; ..." : ""})` : ""}, ${stats.middlewareErrors} errors`];
}

function withUrls(label: string, c: CountWithUrls): string {
  const more = c.count > c.urls.length ? `, ... (${c.count - c.urls.length} more)` : "";
  return `  ${printable(label)} × ${c.count}${c.urls.length > 0 ? `: ${c.urls.map(printable).join(", ")}${more}` : ""}`;
}

/** The closing summary of a run: totals, status counts, HTTP errors and dead letters with their first URLs, bounds. */
export function summaryText(stats: CrawlStats, output: string, o: SummaryOptions = {}): string {
  const secs = o.elapsedSecs ?? stats.elapsedSecs;
  const lines = [
    `${o.ended ?? "done"} in ${secs.toFixed(1)} s: ${stats.pages} pages, ${stats.items} items, ` +
      `${stats.httpErrors} HTTP errors, ${stats.errors} errors, ${stats.retries} retries, ${stats.deferred} deferred, ` +
      `${stats.deadLetters} dead letters, ${(secs > 0 ? stats.pages / secs : 0).toFixed(1)} pages/s`,
  ];
  if (stats.statuses.size > 0) {
    const counts = [...stats.statuses.entries()].sort((a, b) => a[0] - b[0]).map(([status, n]) => `${status} × ${n}`);
    lines.push(`HTTP statuses: ${counts.join(", ")}`);
  }
  if (stats.httpErrorsByStatus.size > 0) {
    lines.push("HTTP errors (not retried):");
    for (const [status, c] of [...stats.httpErrorsByStatus.entries()].sort()) lines.push(withUrls(`HTTP ${status}`, c));
  }
  if (stats.deadLettersByReason.size > 0) {
    lines.push("dead letters by reason:");
    for (const [reason, c] of [...stats.deadLettersByReason.entries()].sort((a, b) => b[1].count - a[1].count)) lines.push(withUrls(reason, c));
  }
  if (stats.bounded.maxDepth > 0) lines.push(`max_depth: ${stats.bounded.maxDepth} links beyond it not followed`);
  for (const b of stats.budgetsSpent) {
    lines.push(`${b.budget} ${b.limit} reached for module ${printable(b.module)} (run ${b.runId}): enqueueing stopped, in-flight work finished`);
  }
  if (stats.bounded.budget > 0) lines.push(`  ${stats.bounded.budget} requests left out after a budget was spent`);
  lines.push(...middlewareSummary(stats));
  lines.push(`items: ${output}`);
  return lines.join("\n");
}

/**
 * The summary of a distributed run from its fleet-wide counts (Redis), in the words of
 * run-standalone's: `submit --wait` ends with it.
 */
export function runSummaryText(run: RunCounts, output: string): string {
  const stats = new CrawlStats(new EventBus());
  stats.stop();
  stats.pages = run.pages;
  stats.items = run.items;
  stats.bytes = run.bytes;
  stats.httpErrors = run.httpErrors;
  stats.retries = run.retries;
  stats.deferred = run.deferred;
  stats.deadLetters = run.dead;
  for (const [status, n] of run.statuses) stats.statuses.set(status, n);
  for (const [reason, n] of run.deadByReason) stats.deadLettersByReason.set(reason, { count: n, urls: [] });
  const end = run.finishedMs ?? Date.now();
  const secs = run.startedMs === undefined ? 0 : Math.max(0, end - run.startedMs) / 1000;
  return summaryText(stats, output, { elapsedSecs: secs, ended: isFinished(run) ? "done" : "not finished" });
}
