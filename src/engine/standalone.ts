import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Config } from "../config/index.ts";
import type { PauseGate } from "../control/pause.ts";
import { privateNetworkPolicy } from "../download/private-network.ts";
import { HttpClient } from "../download/http-client.ts";
import { EventBus } from "../events/bus.ts";
import { CrawlStats } from "../events/stats.ts";
import { PRIORITIES, type TaskModel, TOPICS, type Topic, taskModel, URL_HEADER } from "../model/index.ts";
import { loadMiddlewareChains } from "../middleware/from-config.ts";
import { withStoreMiddleware } from "../middleware/store-sink.ts";
import type { Middleware } from "../modules/middleware.ts";
import type { ModuleRegistry } from "../modules/registry.ts";
import type { CreditMeter } from "../observe/credit.ts";
import type { Logger } from "../observe/logger.ts";
import { MemoryQueue } from "../queue/memory-queue.ts";
import { MemoryRateLimiter } from "../ratelimit/memory-limiter.ts";
import type { FileWriteFault } from "../state/errors.ts";
import { StateFolder } from "../state/state-folder.ts";
import { FRONTIER_FILES } from "../state/frontier-journal.ts";
import { Watchdog } from "../runtime/watchdog.ts";
import { JsonlSink, type JsonlSinkOptions } from "../storage/jsonl-sink.ts";
import type { ItemSink } from "../storage/sink.ts";
import { StdoutSink } from "../storage/stdout-sink.ts";
import { schedulesOf } from "../modules/schedules.ts";
import { CronScheduler, MemoryTickProgress } from "../sync/cron.ts";
import { SOLE_LEADER } from "../sync/leader.ts";
import type { Downloader } from "../download/downloader.ts";
import { ALL_ROLES } from "./flows.ts";
import { showProgress } from "./progress.ts";
import { createRendering } from "./rendering.ts";
import { Worker } from "./worker.ts";

export interface StandaloneOptions {
  config: Config;
  registry: ModuleRegistry;
  /** modules to crawl; empty = every registered module */
  modules?: readonly string[];
  /** task fields (account, platform, priority) for the tasks submitted */
  task?: Partial<Omit<TaskModel, "module">>;
  sink?: ItemSink;
  events?: EventBus;
  downloader?: Downloader;
  /** abort = stop taking new work, finish what is in flight, return */
  signal?: AbortSignal;
  /** show live progress on stderr (a redrawn line on a terminal, plain lines otherwise) */
  progress?: boolean;
  /** global middleware besides `[middleware]` (modules' own come from their definitions) */
  middleware?: readonly Middleware[];
  /**
   * Keep running and submit the modules' cron schedules at their ticks (modules without one run
   * once at the start); ends only by the signal.
   */
  schedule?: boolean;
  /**
   * Keep the frontier on disk in `[state] dir`/<name> (what run-standalone does); `resume`
   * continues the unfinished run found there. Without it the queue lives in memory only.
   */
  state?: { resume: boolean; notify?: (line: string) => void };
  /** prints the progress's warnings and errors (and its plain lines) */
  logger?: Logger;
  pause?: PauseGate;
  credit?: CreditMeter;
  /**
   * With `state`: a watchdog thread ends the process when a parse blocks it past its deadline,
   * recording the delivery in the state folder (run-standalone's supervisor then resumes)
   */
  watchdog?: boolean;
  /** called once the queue and the worker exist, before the crawl starts (e.g. to serve the API) */
  onStart?: (run: { queue: MemoryQueue; workerId: string }) => Promise<void>;
}

export interface StandaloneResult {
  stats: CrawlStats;
  /** where the items went */
  output: string;
  deadLetters: Record<Topic, number>;
  /** where the dead letters were written (`<output.path>/dead_letters.jsonl`), when there were some */
  deadLetterFile?: string;
  /** true if stopped by the signal before the work was drained */
  interrupted: boolean;
  /** in-flight messages abandoned when the stop outlasted shutdown_timeout_secs (left for re-delivery) */
  abandoned: number;
  /** messages still queued (ready or delayed) at the end */
  remaining: number;
  /** the error that ended the flows early (e.g. the state folder could not be written), if any */
  fatal?: Error;
  /** with `state`: the state folder, whether this run resumed one, and notes about it */
  state?: { path: string; resumed: boolean; notes: string[] };
  queue: MemoryQueue;
}

/** The item sink `[output]` asks for (the Redis sink needs a worker: see start-worker). */
export function createLocalSink(config: Config, jsonl?: JsonlSinkOptions): ItemSink {
  switch (config.output.sink) {
    case "stdout":
      return new StdoutSink(config.output.maxItemBytes);
    case "jsonl":
      return new JsonlSink(config.output.path, { maxItemBytes: config.output.maxItemBytes, ...jsonl });
    case "redis":
      throw new Error('output.sink = "redis" needs Redis: use start-worker, or set output.sink = "jsonl" for run-standalone');
    case "postgres":
      throw new Error('output.sink = "postgres" is opened with openItemSink (it loads the PostgreSQL driver only then)');
  }
}

/**
 * The item sink `[output]` asks for, the PostgreSQL one connected (it checks the database first).
 * The driver is imported only for that sink: a crawl writing JSONL does not load it.
 */
export async function openItemSink(config: Config, jsonl?: JsonlSinkOptions): Promise<ItemSink> {
  if (config.output.sink !== "postgres") return createLocalSink(config, jsonl);
  const { PostgresItemSink } = await import("../storage/postgres-sink.ts");
  return PostgresItemSink.connect(config);
}

/** `modules`: whose allowedDomains may resolve to private addresses (docs/security.md) */
export function createHttpClient(config: Config, modules?: { has(name: string): boolean; settings(name: string): { allowedDomains?: string[] } }): HttpClient {
  return new HttpClient({
    userAgent: config.crawler.userAgent,
    maxBodyBytes: config.downloadConfig.maxResponseSize,
    maxRedirects: config.downloadConfig.maxRedirects,
    followRedirects: false, // redirects go through the engine (src/download/redirects.ts)
    poolSize: config.downloadConfig.poolSize,
    privateNetworks: privateNetworkPolicy(config.downloadConfig, (m) => (modules?.has(m) ? modules.settings(m).allowedDomains : undefined)),
  });
}

/**
 * Crawls in one process: one task per module (none when resuming), then every flow runs until
 * nothing is ready, in flight or waiting for a retry. With `state` the queue is journaled to
 * the state folder, so a crash or a stop can be resumed.
 */
export async function runStandalone(options: StandaloneOptions): Promise<StandaloneResult> {
  const { config, registry } = options;
  const names = options.modules && options.modules.length > 0 ? [...options.modules] : registry.names();
  for (const n of names) registry.get(n); // unknown names fail here, before anything starts
  if (names.length === 0) throw new Error("no modules to run: put a module in modules/ or list one with --module");

  const events = options.events ?? new EventBus();
  // a module asking for a browser when there is none stops the run here, before anything starts
  const rendering = createRendering(config, registry, options.downloader ?? createHttpClient(config, registry), { events, check: names });
  const stats = new CrawlStats(events);
  // a file that cannot be written (a full disk) stops the crawl: the first fault is the one reported
  let fault: Error | undefined;
  let onFault = (): void => {};
  const faulted = (f: FileWriteFault): void => events.emit({ type: "write_fault", path: f.path, message: f.message });
  const stopListening = events.listen(["write_fault"], (e) => {
    if (fault) return;
    fault = new Error(e.message);
    onFault();
  });
  const folder = options.state
    ? StateFolder.open({
        dir: config.state.dir,
        name: config.name,
        modules: names,
        resume: options.state.resume,
        fsync: config.state.fsync,
        segmentBytes: config.state.segmentMb * 1024 * 1024,
        onFault: faulted,
      })
    : undefined;
  for (const note of folder?.notes ?? []) options.state?.notify?.(note);
  const queue = new MemoryQueue(folder ? { journal: folder.journal, recovered: folder.recovered, maxDeliveries: config.crawler.requestMaxRetries } : {});
  for (const d of queue.recoveredDeadLetters) options.state?.notify?.(`dead-lettered a ${d.topic} message that ended the process too often: ${d.reason}`);
  const watchdog =
    folder && options.watchdog
      ? Watchdog.start({ store: { kind: "file", path: join(folder.path, FRONTIER_FILES.poison) }, maxBlockSecs: config.crawler.shutdownTimeoutSecs || undefined })
      : undefined;
  const middleware = await loadMiddlewareChains(config, registry, options.middleware);
  const output =
    options.sink ??
    (await openItemSink(config, { mode: config.output.mode, marks: folder?.marks, onFault: faulted }));
  const sink = withStoreMiddleware(output, middleware);
  const worker = new Worker(
    {
      config,
      queue,
      registry,
      sink,
      events,
      downloader: rendering.downloader,
      renders: true,
      limiter: new MemoryRateLimiter(),
      middleware,
      pause: options.pause,
      credit: options.credit,
      guard: watchdog,
    },
    ALL_ROLES,
  );
  await options.onStart?.({ queue, workerId: worker.id });

  const schedules = options.schedule ? schedulesOf(registry, names) : [];
  if (options.schedule && schedules.length === 0) throw new Error(`--schedule: none of the modules (${names.join(", ")}) has a cron schedule (cron in defineModule or [modules.<name>])`);
  const once = names.filter((name) => !schedules.some((s) => s.module === name));
  if (!folder?.resumed) {
    await queue.publish(
      "task",
      once.map((name) => ({ message: taskModel({ ...options.task, module: [name] }) })),
    );
  }
  // this process is the only one: it leads, and fires the schedules itself
  const scheduler = new CronScheduler({
    name: config.name,
    schedules,
    queue,
    leadership: SOLE_LEADER,
    progress: new MemoryTickProgress(),
    misfireToleranceMs: config.scheduler.misfireToleranceSecs * 1000,
    concurrency: config.scheduler.concurrency,
    events,
  }).start();
  const stopProgress = options.progress
    ? showProgress(events, stats, {
        intervalSecs: config.crawler.progressIntervalSecs,
        queued: async () => (await queue.depth("request")) + (await queue.depth("render")) + (await queue.depth("task")),
        logger: options.logger,
      })
    : () => {};
  const running = worker.run();
  let interrupted = false;
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      if (!options.schedule && queue.isDrained()) done();
    }, 20);
    const onAbort = () => {
      interrupted = true;
      done();
    };
    onFault = () => {
      stopProgress(); // the fault is reported once, by the caller: not the errors of the pages still in flight
      onAbort();
    };
    const done = () => {
      clearInterval(timer);
      options.signal?.removeEventListener("abort", onAbort);
      resolve();
    };
    if (options.signal?.aborted || fault) onAbort(); // a fault while the first task was published
    else options.signal?.addEventListener("abort", onAbort, { once: true });
    running.catch(done);
  });
  await scheduler.stop();
  // after a write fault nothing in flight can be stored: what is not done in 2 s is fetched again on --resume
  const stopMs = fault ? Math.min(2000, config.crawler.shutdownTimeoutSecs * 1000) : config.crawler.shutdownTimeoutSecs * 1000;
  const outcome = await worker.stop(fault ? "write fault" : interrupted ? "interrupted" : "drained", stopMs);
  // a failed flow still gets its summary: the caller reports the error after it
  const fatal =
    fault ??
    (await running.then(
      () => undefined,
      (err: unknown) => (err instanceof Error ? err : new Error(String(err))),
    ));
  stopListening();
  stopProgress();
  await rendering.close();
  const queueStats = await queue.stats();
  const abandoned = outcome === "timeout" ? TOPICS.reduce((n, t) => n + queueStats[t].inFlight, 0) : 0;
  await sink.close();
  await queue.close();
  await watchdog?.stop();
  const drained = queue.isDrained();
  folder?.close(drained);
  stats.stop();
  const deadLetters = Object.fromEntries(TOPICS.map((t) => [t, queueStats[t].dead])) as Record<Topic, number>;
  const deadLetterFile = fault ? undefined : await writeDeadLetters(queue, config.output.path);
  const remaining = TOPICS.reduce((n, t) => n + queueStats[t].delayed + PRIORITIES.reduce((m, p) => m + queueStats[t].ready[p], 0), 0);
  const state = folder ? { path: folder.path, resumed: folder.resumed, notes: folder.notes } : undefined;
  return { stats, output: sink.describe(), deadLetters, deadLetterFile, interrupted, abandoned, remaining, fatal, state, queue };
}

/**
 * Writes the dead letters held by a standalone queue to `<dir>/dead_letters.jsonl` (replacing
 * the last run's), one JSON object per line: topic, reason, module, url. Returns the path, or
 * undefined when there were none.
 */
export async function writeDeadLetters(queue: MemoryQueue, dir: string): Promise<string | undefined> {
  const lines: string[] = [];
  for (const topic of TOPICS) {
    for (const d of await queue.listDeadLetters(topic, Number.MAX_SAFE_INTEGER)) {
      const m = d.message as { module?: unknown; url?: unknown; headers?: unknown } | undefined;
      let url = typeof m?.url === "string" ? m.url : undefined;
      if (url === undefined && Array.isArray(m?.headers)) url = (m.headers as Array<[string, string]>).find(([k]) => k === URL_HEADER)?.[1];
      lines.push(JSON.stringify({ topic, reason: d.reason, module: typeof m?.module === "string" ? m.module : null, url: url ?? null }));
    }
  }
  if (lines.length === 0) return undefined;
  await mkdir(dir, { recursive: true });
  const path = join(dir, "dead_letters.jsonl");
  await writeFile(path, `${lines.join("\n")}\n`);
  return path;
}
