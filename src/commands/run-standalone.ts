import process from "node:process";
import { parseArgs } from "node:util";
import { MemoryPauseFlag } from "../control/pause.ts";
import type { ShopServer } from "../../examples/demo-shop/shop.ts";
import { ALL_ROLES } from "../engine/flows.ts";
import { createLogger, type Observed, observeCrawl } from "../engine/observability.ts";
import { summaryText } from "../engine/progress.ts";
import { runStandalone } from "../engine/standalone.ts";
import { EventBus } from "../events/bus.ts";
import type { CrawlStats } from "../events/stats.ts";
import type { Logger } from "../observe/logger.ts";
import { CreditMeter } from "../observe/credit.ts";
import type { Queue } from "../queue/queue.ts";
import { onStopSignals } from "../runtime/index.ts";
import { lastRunIn } from "../state/state-folder.ts";
import { schedulesOf } from "../modules/schedules.ts";
import { DEMO_MODULE, loadConfigFrom, loadRegistry, parseLogLevel, UsageError } from "./common.ts";

export const usage = `usage: run-standalone [--config PATH] [--module NAME]... [--resume] [--demo [--items N]] [--schedule] [--log-level L]

Crawls in this process until the work is drained, then prints a summary. No Redis needed.
The frontier (queued requests, seen set, dead letters, stored marks) is kept on disk in
[state] dir/<name>, so a stopped or crashed run can be continued with --resume.

  --config PATH   config file (default: ./config.toml if present, else built-in defaults)
  --module NAME   run this module (repeatable; default: every module found)
  --resume        continue the unfinished run in the state folder: only what was in flight is
                  fetched again, and the output gets no duplicate item; with nothing
                  unfinished there, says when the last run finished and exits 0 without
                  crawling (a fresh crawl is the plain command)
  --demo          serve the bundled demo shop on 127.0.0.1 and crawl it with the bundled demo_shop
                  module, or with the --module(s) given (their start_url set to the shop's)
  --items N       with --demo: items in the demo shop (default 200)
  --schedule      keep running and submit each module's cron schedule at its ticks (modules
                  without one run once); stop with Ctrl-C
  --log-level L   debug, info, warn or error (default: [logger] level)
  -h, --help      this help

With [api] port set, serves the API and the dashboard (GET /) while it crawls; pause/resume
there hold this process's crawl.

Ctrl-C (or SIGTERM) stops taking new work, lets in-flight pages finish (up to
crawler.shutdown_timeout_secs), and prints the summary; a second one, 2 s or more after the
first, quits at once. Either way the state is kept for --resume.

Exit codes: 0 finished (everything crawled; dead letters are in the summary); 130 interrupted
(Ctrl-C/SIGTERM with work left: continue with --resume); 1 failed (a fatal error, or in-flight
work outlasted shutdown_timeout_secs); 2 bad configuration or command line.`;

/** Links not followed: one summary line; the per-domain lines at --log-level debug. */
export function printDroppedLinks(stats: CrawlStats, logger: Logger): void {
  const summary = stats.droppedLinksSummary();
  if (summary) logger.print(summary);
  if (logger.enabled("debug")) for (const line of stats.droppedLinksLines()) logger.print(line);
}

export async function runStandaloneCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      config: { type: "string" },
      module: { type: "string", multiple: true },
      demo: { type: "boolean" },
      resume: { type: "boolean" },
      items: { type: "string" },
      schedule: { type: "boolean" },
      "log-level": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(usage);
    return 0;
  }
  const logLevel = parseLogLevel(values["log-level"]);
  const config = await loadConfigFrom(values.config);
  let modules = values.module ?? [];
  const overrides: Record<string, Record<string, unknown>> = {};
  let shop: ShopServer | undefined;
  if (values.demo) {
    const items = values.items === undefined ? 200 : Number(values.items);
    if (!Number.isInteger(items) || items < 1) throw new UsageError(`--items must be a whole number >= 1, got ${values.items}`);
    // the demo shop is an example beside the engine, loaded only for --demo
    const { startShop } = await import("../../examples/demo-shop/shop.ts");
    shop = await startShop({ items });
    console.error(`demo shop with ${items} items serving at ${shop.url}`);
    if (modules.length === 0) modules = [DEMO_MODULE];
    // every module run against the demo starts at its first list page
    for (const m of modules) overrides[m] = { start_url: `${shop.url}/list/0` };
  }
  if (values.resume && !values.demo) {
    const last = lastRunIn(config.state.dir, config.name);
    if (last?.status !== "running") {
      console.error(
        last
          ? `--resume: nothing unfinished in ${last.path}: the last run (${last.modules.join(", ")}) finished at ${last.updated}; not crawling (run without --resume for a fresh crawl)`
          : `--resume: no run of ${config.name} in ${config.state.dir} yet; not crawling (run without --resume to start one)`,
      );
      return 0;
    }
  }
  const controller = new AbortController();
  let observed: Observed | undefined;
  const removeSignals = onStopSignals(
    (sig) => {
      console.error(`\n${sig}: finishing in-flight pages (again to quit at once)`);
      controller.abort();
    },
    (sig) => {
      console.error(`${sig} again: quitting now; pages in flight will be fetched again with --resume`);
      process.exit(130);
    },
  );
  try {
    const registry = await loadRegistry(config, overrides, modules);
    if (values.schedule && schedulesOf(registry, modules).length === 0) {
      throw new UsageError(`--schedule: none of the modules (${(modules.length > 0 ? modules : registry.names()).join(", ")}) has a cron schedule (cron in defineModule, or in [modules.<name>])`);
    }
    const events = new EventBus();
    const logger = createLogger(config, logLevel);
    const pause = new MemoryPauseFlag(events);
    const credit = new CreditMeter();
    const onStart = async ({ queue, workerId }: { queue: Queue; workerId: string }) => {
      observed = await observeCrawl({ config, events, queue, registry, logger, node: { id: workerId, roles: ALL_ROLES }, credit, control: pause, progress: logger.enabled("info") });
    };
    const result = await runStandalone({
      config,
      registry,
      modules,
      signal: controller.signal,
      progress: logger.enabled("info"),
      schedule: values.schedule,
      state: { resume: values.resume ?? false, notify: (line) => logger.print(line) },
      events,
      logger,
      pause,
      credit,
      watchdog: true,
      onStart,
    }).finally(() => observed?.stop());
    // stopped with work left: resumable, and a script can tell it from a finished crawl
    const interrupted = result.interrupted && result.remaining > 0;
    for (const line of summaryText(result.stats, result.output, { ended: interrupted ? "interrupted" : "done" }).split("\n")) logger.print(line);
    printDroppedLinks(result.stats, logger);
    const dead = Object.entries(result.deadLetters).filter(([, n]) => n > 0);
    if (dead.length > 0) logger.print(`dead letters: ${dead.map(([t, n]) => `${t} ${n}`).join(", ")}; all of them in ${result.deadLetterFile}`);
    const where = result.state?.path ?? "";
    if (result.fatal) {
      logger.print(`fatal: ${result.fatal.message.split("\n")[0]}; state in ${where} (continue with --resume once fixed)`);
      return 1;
    }
    if (result.abandoned > 0) {
      logger.print(
        `shutdown: ${result.abandoned} messages still in flight after ${config.crawler.shutdownTimeoutSecs} s were left for re-delivery; ` +
          `${result.remaining} more queued; state in ${where} (continue with --resume)`,
      );
      return 1;
    }
    if (interrupted) {
      logger.print(`interrupted: ${result.remaining} messages still queued; state in ${where} (continue with --resume)`);
      return 130;
    }
    return 0;
  } finally {
    removeSignals();
    await shop?.close();
  }
}
