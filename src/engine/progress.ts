import { stderr } from "node:process";
import type { Subscription } from "rxjs";
import type { EventBus } from "../events/bus.ts";
import type { CrawlStats } from "../events/stats.ts";
import type { Logger } from "../observe/logger.ts";

export interface ProgressOptions {
  /** seconds between plain log lines when not on a terminal */
  intervalSecs: number;
  /** queued messages now (ready + delayed), for display */
  queued: () => Promise<number>;
  /** redraw one status line (terminal) or print plain lines */
  tty?: boolean;
  write?: (text: string) => void;
  /** prints warnings and errors (and the plain progress lines, at info); the line is redrawn around its lines */
  logger?: Logger;
}

function line(stats: CrawlStats, queued: number): string {
  return (
    `pages ${stats.pages}  items ${stats.items}  errors ${stats.httpErrors + stats.errors}  retries ${stats.retries}` +
    `  dead ${stats.deadLetters}  ${stats.pagesPerSec.toFixed(1)} pages/s  queued ${queued}`
  );
}

/**
 * Live progress, a subscriber of the crawl's stats: on a terminal one line redrawn four times a
 * second, otherwise a plain line every `intervalSecs`. Warnings and errors are printed as they
 * come. Returns a function that stops it.
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
  const sub: Subscription = bus.events$.subscribe((e) => {
    if (!logger && (e.type === "warning" || e.type === "error")) {
      clear();
      write(`${e.type === "error" ? "error" : "warning"}: ${"stage" in e ? `[${e.stage}] ` : ""}${e.message}\n`);
      if (tty && last) write(last);
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
    sub.unsubscribe();
    clear();
  };
}

/** The closing summary of a run. */
export function summaryText(stats: CrawlStats, output: string): string {
  return [
    `done in ${stats.elapsedSecs.toFixed(1)} s: ${stats.pages} pages, ${stats.items} items, ` +
      `${stats.httpErrors} HTTP errors, ${stats.errors} errors, ${stats.retries} retries, ${stats.deadLetters} dead letters, ` +
      `${stats.pagesPerSec.toFixed(1)} pages/s`,
    `items: ${output}`,
  ].join("\n");
}
