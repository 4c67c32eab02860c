import type { Config } from "../config/index.ts";
import { HttpClient } from "../download/http-client.ts";
import { EventBus } from "../events/bus.ts";
import { CrawlStats } from "../events/stats.ts";
import { PRIORITIES, type TaskModel, TOPICS, type Topic, taskModel } from "../model/index.ts";
import type { ModuleRegistry } from "../modules/registry.ts";
import { MemoryQueue } from "../queue/memory-queue.ts";
import { MemoryRateLimiter } from "../ratelimit/memory-limiter.ts";
import { StateFolder } from "../state/state-folder.ts";
import { JsonlSink, type JsonlSinkOptions } from "../storage/jsonl-sink.ts";
import type { ItemSink } from "../storage/sink.ts";
import { StdoutSink } from "../storage/stdout-sink.ts";
import type { Downloader } from "../../operators/index.ts";
import { ALL_ROLES } from "./flows.ts";
import { showProgress } from "./progress.ts";
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
  /**
   * Keep the frontier on disk in `[state] dir`/<name> (what run-standalone does); `resume`
   * continues the unfinished run found there. Without it the queue lives in memory only.
   */
  state?: { resume: boolean; notify?: (line: string) => void };
}

export interface StandaloneResult {
  stats: CrawlStats;
  /** where the items went */
  output: string;
  deadLetters: Record<Topic, number>;
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
      return new StdoutSink();
    case "jsonl":
      return new JsonlSink(config.output.path, jsonl);
    case "redis":
      throw new Error('output.sink = "redis" needs Redis: use start-worker, or set output.sink = "jsonl" for run-standalone');
  }
}

export function createHttpClient(config: Config): HttpClient {
  return new HttpClient({
    userAgent: config.crawler.userAgent,
    maxBodyBytes: config.downloadConfig.maxResponseSize,
    maxRedirects: config.downloadConfig.maxRedirects,
    poolSize: config.downloadConfig.poolSize,
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
  const stats = new CrawlStats(events);
  const folder = options.state
    ? StateFolder.open({
        dir: config.state.dir,
        name: config.name,
        modules: names,
        resume: options.state.resume,
        fsync: config.state.fsync,
        segmentBytes: config.state.segmentMb * 1024 * 1024,
      })
    : undefined;
  for (const note of folder?.notes ?? []) options.state?.notify?.(note);
  const queue = new MemoryQueue(folder ? { journal: folder.journal, recovered: folder.recovered } : {});
  const sink = options.sink ?? createLocalSink(config, { mode: config.output.mode, marks: folder?.marks });
  const worker = new Worker(
    {
      config,
      queue,
      registry,
      sink,
      events,
      downloader: options.downloader ?? createHttpClient(config),
      limiter: new MemoryRateLimiter(),
    },
    ALL_ROLES,
  );

  if (!folder?.resumed) {
    await queue.publish(
      "task",
      names.map((name) => ({ message: taskModel({ ...options.task, module: [name] }) })),
    );
  }
  const stopProgress = options.progress
    ? showProgress(events, stats, {
        intervalSecs: config.crawler.progressIntervalSecs,
        queued: async () => (await queue.depth("request")) + (await queue.depth("task")),
      })
    : () => {};
  const running = worker.run();
  let interrupted = false;
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      if (queue.isDrained()) done();
    }, 20);
    const onAbort = () => {
      interrupted = true;
      done();
    };
    const done = () => {
      clearInterval(timer);
      options.signal?.removeEventListener("abort", onAbort);
      resolve();
    };
    if (options.signal?.aborted) onAbort();
    else options.signal?.addEventListener("abort", onAbort, { once: true });
    running.catch(done);
  });
  const outcome = await worker.stop(interrupted ? "interrupted" : "drained", config.crawler.shutdownTimeoutSecs * 1000);
  // a failed flow still gets its summary: the caller reports the error after it
  const fatal = await running.then(
    () => undefined,
    (err: unknown) => (err instanceof Error ? err : new Error(String(err))),
  );
  stopProgress();
  const queueStats = await queue.stats();
  const abandoned = outcome === "timeout" ? TOPICS.reduce((n, t) => n + queueStats[t].inFlight, 0) : 0;
  await sink.close();
  await queue.close();
  const drained = queue.isDrained();
  folder?.close(drained);
  stats.stop();
  const deadLetters = Object.fromEntries(TOPICS.map((t) => [t, queueStats[t].dead])) as Record<Topic, number>;
  const remaining = TOPICS.reduce((n, t) => n + queueStats[t].delayed + PRIORITIES.reduce((m, p) => m + queueStats[t].ready[p], 0), 0);
  const state = folder ? { path: folder.path, resumed: folder.resumed, notes: folder.notes } : undefined;
  return { stats, output: sink.describe(), deadLetters, interrupted, abandoned, remaining, fatal, state, queue };
}
