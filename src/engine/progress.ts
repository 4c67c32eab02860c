import { stderr } from "node:process";
import type { Subscription } from "rxjs";
import type { EventBus } from "../events/bus.ts";
import type { CrawlStats } from "../events/stats.ts";

export interface ProgressOptions {
  /** seconds between plain log lines when not on a terminal */
  intervalSecs: number;
  /** queued messages now (ready + delayed), for display */
  queued: () => Promise<number>;
  /** redraw one status line (terminal) or print plain lines */
  tty?: boolean;
  write?: (text: string) => void;
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
  const sub: Subscription = bus.events$.subscribe((e) => {
    if (e.type === "warning" || e.type === "error") {
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
    } else write(`[progress] ${text}\n`);
  };
  const timer = setInterval(() => void tick(), tty ? 250 : options.intervalSecs * 1000);
  return () => {
    clearInterval(timer);
    sub.unsubscribe();
    clear();
  };
}

/** Control characters (a terminal's escape sequences) shown as \\u escapes: reasons may quote page data. */
function printable(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

/** The middleware line of the summary: items dropped (top reasons) and middleware errors; none when both are 0. */
function middlewareSummary(stats: CrawlStats): string[] {
  if (stats.dropped === 0 && stats.middlewareErrors === 0) return [];
  const top = [...stats.droppedReasons].sort((a, b) => b[1] - a[1]).slice(0, 3);
  const reasons = top.map(([r, n]) => `${n} ${printable(r)}`).join("; ");
  return [`middleware: ${stats.dropped} items dropped${reasons ? ` (${reasons}${stats.droppedReasons.size > 3 ? "; ..." : ""})` : ""}, ${stats.middlewareErrors} errors`];
}

/** The closing summary of a run. */
export function summaryText(stats: CrawlStats, output: string): string {
  return [
    `done in ${stats.elapsedSecs.toFixed(1)} s: ${stats.pages} pages, ${stats.items} items, ` +
      `${stats.httpErrors} HTTP errors, ${stats.errors} errors, ${stats.retries} retries, ${stats.deadLetters} dead letters, ` +
      `${stats.pagesPerSec.toFixed(1)} pages/s`,
    `items: ${output}`,
    ...middlewareSummary(stats),
  ].join("\n");
}
