import { parseArgs } from "node:util";
import { budgetTtlSecs, RedisBudgetStore } from "../bounds/budget-store.ts";
import { type Config, cacheRedisConnection } from "../config/index.ts";
import { RedisPauseFlag } from "../control/pause.ts";
import { ALL_ROLES, createBounds, type Role } from "../engine/flows.ts";
import { listNodes, NodeRegistry } from "../observe/node-registry.ts";
import { createLogger, observeCrawl } from "../engine/observability.ts";
import { createPoliteness } from "../engine/politeness.ts";
import { countRuns } from "../engine/run-counts.ts";
import { showProgress } from "../engine/progress.ts";
import { createHttpClient, openItemSink } from "../engine/standalone.ts";
import { createRendering } from "../engine/rendering.ts";
import { Worker } from "../engine/worker.ts";
import { EventBus } from "../events/bus.ts";
import { CrawlStats } from "../events/stats.ts";
import { CreditMeter } from "../observe/credit.ts";
import { BlobOffloadQueue } from "../storage/blob-offload-queue.ts";
import type { Queue } from "../queue/queue.ts";
import { openConnection } from "../redis/connection.ts";
import { openQueue, queueEngineName } from "../queue/open-queue.ts";
import { RedisQueue } from "../queue/redis/index.ts";
import { loadMiddlewareChains } from "../middleware/from-config.ts";
import { withStoreMiddleware } from "../middleware/store-sink.ts";
import { MemoryRateLimiter } from "../ratelimit/memory-limiter.ts";
import { onStopSignals } from "../runtime/index.ts";
import { Watchdog } from "../runtime/watchdog.ts";
import { schedulesOf } from "../modules/schedules.ts";
import { checkScheduleConfig, CronScheduler, RedisTickProgress } from "../sync/cron.ts";
import { LeaderElector } from "../sync/leader.ts";
import { FileBlobStorage } from "../storage/blob-storage.ts";
import { RedisItemSink } from "../storage/redis-sink.ts";
import type { ItemSink } from "../storage/sink.ts";
import { loadConfigFrom, loadRegistry, parseLogLevel, UsageError } from "./common.ts";
import { printDroppedLinks } from "./run-standalone.ts";

/** How long the watchdog's record of a blocking delivery is kept (`<stream key>:poison`). */
const POISON_TTL_SECS = 7 * 24 * 3600;

export const usage = `usage: start-worker [--config PATH] [--roles task,download,parse] [--browser] [--exit-when-idle SECS] [--log-level L]

Joins the crawl in Redis (channel_config.redis), or on NATS JetStream when [channel_config.nats]
is set, and works until SIGINT/SIGTERM; then stops
taking work, finishes and acks what is in flight, flushes the sink, and exits 0.

  --config PATH   config file (default: ./config.toml if present, else built-in defaults)
  --roles LIST    stages to run, comma-separated: task (expand tasks into requests), download,
                  parse (default: all). A download-only worker puts Responses on the "response"
                  topic for parse workers.
  --browser       this worker has Chromium ([browser] executable): it also takes pages that
                  need a browser (render = "browser" | "auto", the "render" topic); without it,
                  it never takes rendering work and leaves it to workers started with --browser
  --exit-when-idle SECS   stop (and exit 0) once every queue of the crawl has been empty
                  (nothing ready, in flight or delayed, fleet-wide) for SECS seconds: for batch
                  jobs (a Kubernetes Job, a CI step)
  --log-level L   debug, info, warn or error (default: [logger] level)
  -h, --help      this help

Exit codes: 0 stopped (signal, --exit-when-idle) after draining; 1 fatal error (Redis lost past
reconnect_budget_secs) or in-flight work outlasted shutdown_timeout_secs; 2 bad config or usage.

With [api] port set, serves the API and the dashboard (GET /) on [api] host:port.`;

export function parseRoles(text: string | undefined): Role[] {
  if (text === undefined) return [...ALL_ROLES];
  const roles = text.split(",").map((r) => r.trim()).filter(Boolean);
  for (const r of roles) {
    if (!ALL_ROLES.includes(r as Role)) throw new UsageError(`unknown role ${JSON.stringify(r)}: roles are ${ALL_ROLES.join(", ")}`);
  }
  if (roles.length === 0) throw new UsageError("--roles needs at least one role");
  return roles as Role[];
}

/** The queue a worker uses: JetStream ([channel_config.nats]) or Redis, with large Response bodies offloaded when blob storage is set. */
export async function connectQueue(config: Config, onFatal: (err: Error) => void, events?: EventBus): Promise<Queue> {
  return (await connectWorkerQueue(config, onFatal, events)).queue;
}

/** connectQueue, and the Redis queue under it when the queues are on Redis (it keeps the per-run counts). */
export async function connectWorkerQueue(config: Config, onFatal: (err: Error) => void, events?: EventBus): Promise<{ queue: Queue; redis: RedisQueue | undefined }> {
  const opened = await openQueue(config, {
    onFatal,
    onConnection: (c) =>
      events?.emit(c.state === "down" ? { type: "redis_unreachable", endpoint: c.endpoint, reason: c.reason } : { type: "redis_reconnected", endpoint: c.endpoint, downMs: c.downMs }),
  });
  const path = config.channelConfig.blobStorage.path;
  return { queue: path ? new BlobOffloadQueue(opened, new FileBlobStorage(path)) : opened, redis: opened instanceof RedisQueue ? opened : undefined };
}

/** Parses --exit-when-idle: seconds > 0, or undefined when not given. */
export function parseIdleSecs(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0) throw new UsageError(`--exit-when-idle takes seconds > 0, got ${JSON.stringify(text)}`);
  return n;
}

/**
 * Resolves once every topic has had nothing ready, in flight or delayed (fleet-wide) at each
 * look for `idleMs` (looks every second, at most idleMs / 4 apart).
 */
export function whenIdleFor(queue: Queue, idleMs: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    let emptySince: number | undefined;
    const look = async () => {
      if (signal.aborted) return resolve();
      try {
        const stats = await queue.stats();
        const busy = Object.values(stats).some((t) => t.ready.high + t.ready.normal + t.ready.low + t.inFlight + t.delayed > 0);
        if (busy) emptySince = undefined;
        else {
          emptySince ??= Date.now();
          if (Date.now() - emptySince >= idleMs) return resolve();
        }
      } catch {
        emptySince = undefined; // Redis away: not idle
      }
      setTimeout(look, Math.max(50, Math.min(1000, idleMs / 4)));
    };
    void look();
  });
}

export async function createWorkerSink(config: Config): Promise<ItemSink> {
  const o = config.output;
  if (o.sink === "redis") return RedisItemSink.connect(config, { maxLen: o.redisMaxLen, seenTtlSecs: o.redisSeenTtlSecs });
  return openItemSink(config);
}

/**
 * What the summary says about duplicates: a JSONL or stdout sink dedups in its own process
 * only, so a page re-delivered to another worker (reclaimed after a crash or a stall) is
 * written there again; the Redis sink stores each page once for all workers.
 */
export function deliveryNote(config: Config): string {
  if (config.output.sink === "redis") return "";
  return ` (at-least-once: a page re-delivered to another worker is written there again; [output] sink = "redis" stores each page once)`;
}

export async function startWorkerCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      config: { type: "string" },
      roles: { type: "string" },
      browser: { type: "boolean" },
      "exit-when-idle": { type: "string" },
      "log-level": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(usage);
    return 0;
  }
  const roles = parseRoles(values.roles);
  const idleSecs = parseIdleSecs(values["exit-when-idle"]);
  const logLevel = parseLogLevel(values["log-level"]);
  const config = await loadConfigFrom(values.config);
  const registry = await loadRegistry(config);
  // configuration problems of middleware and schedules stop start-up before anything connects
  const middleware = await loadMiddlewareChains(config, registry);
  const schedules = schedulesOf(registry);
  checkScheduleConfig(config, schedules);
  const events = new EventBus();
  const logger = createLogger(config, logLevel);
  const renders = values.browser === true && roles.includes("download");
  // --browser without Chromium stops start-up here, with the setting to fix
  const httpClient = createHttpClient(config, registry);
  const rendering = createRendering(config, registry, httpClient, { events, check: renders ? registry.names() : [], askedBy: renders ? "start-worker --browser" : undefined });
  if (renders) rendering.pool.check();

  let fatal: Error | undefined;
  let requestStop: (reason: string) => void = () => {};
  const { queue, redis } = await connectWorkerQueue(config, (err) => {
    fatal = err;
    requestStop(err.message);
  }, events);
  // runs are counted in the Redis queue's own steps; on JetStream there are no per-run counts
  const stopCountingRuns = redis ? countRuns(events, redis) : () => {};
  // a cron tick's run is listed (status, /runs) from its submission, as a submitted one
  const runBook = redis?.runs();
  const recordTicks = events.on("schedule_submitted").subscribe((e) => {
    runBook?.record(e.runId, [e.module]).catch(() => {}); // only the listing waits for it: the run is counted anyway
  });
  // a file this worker writes (a JSONL or stdout sink) that cannot be written stops it: one line, exit 1
  events.listen(["write_fault"], (e) => {
    if (fatal) return;
    fatal = new Error(e.message);
    requestStop("write fault");
  });
  const sink = withStoreMiddleware(await createWorkerSink(config), middleware);
  const stats = new CrawlStats(events);
  // rate limits, concurrency leases, robots.txt, caches and backoff shared with every worker
  const r = config.channelConfig.redis;
  const cacheRedis = await openConnection(cacheRedisConnection(config), "command", r.connectTimeoutMs, `${config.name}:politeness`);
  const politeness = createPoliteness(config, cacheRedis, { events, allowedDomainsOf: (m) => (registry.has(m) ? registry.settings(m).allowedDomains : undefined) });
  registry.useLocks(politeness.locks); // modules' ctx.lock: shared by every worker
  // run budgets (max_requests, max_items) are counted for all workers on the same connection
  const bounds = createBounds(config, registry, new RedisBudgetStore(cacheRedis, config.name, budgetTtlSecs(config)), events);
  // the fleet-wide pause flags: a local copy, re-read every second on this connection
  const pause = await RedisPauseFlag.start(cacheRedis, config.name, { events });
  const credit = new CreditMeter();
  // a parse that blocks this process past its deadline: recorded on its stream entry, then the
  // process ends (the supervisor restarts it; claim.lua dead-letters the entry once its budget is spent)
  const watchdog = Watchdog.start({
    store: { kind: "redis", host: r.redisHost, port: r.redisPort, db: r.redisDb, username: r.redisUsername, password: r.redisPassword, ttlSecs: POISON_TTL_SECS },
    // below claim_min_idle (JetStream: ack_wait): a worker blocked longer has its entry claimed
    // (and blocked on) by the next
    maxBlockSecs: Math.min(config.crawler.shutdownTimeoutSecs || Infinity, ((config.channelConfig.nats?.ackWaitMs ?? r.claimMinIdle) / 1000) * 0.8),
  });
  const worker = new Worker(
    { config, queue, registry, sink, events, downloader: renders ? rendering.downloader : httpClient, renders, limiter: new MemoryRateLimiter(), politeness, bounds, middleware, pause, credit, guard: watchdog },
    roles,
  );
  const nodes = await NodeRegistry.start(config, {
    id: worker.id,
    roles: renders ? [...roles, "browser"] : roles,
    pages: () => stats.pages,
    items: () => stats.items,
    rendering: renders ? () => rendering.pool.stats().inFlight : undefined,
  });
  // one leader per crawl (<name>:leader:cron); only it submits the cron schedules' ticks
  events.on("leader_elected").subscribe((e) => console.error(`worker ${e.workerId} is the leader (term ${e.term})${schedules.length > 0 ? `; schedules: ${schedules.map((s) => `${s.module} "${s.expression}"`).join(", ")}` : ""}`));
  const leader = new LeaderElector(cacheRedis, config.name, worker.id, config.scheduler.leaderLeaseSecs * 1000, events).start();
  const scheduler = new CronScheduler({
    name: config.name,
    schedules,
    queue,
    leadership: leader,
    progress: new RedisTickProgress(cacheRedis, config.name),
    misfireToleranceMs: config.scheduler.misfireToleranceSecs * 1000,
    concurrency: config.scheduler.concurrency,
    events,
  }).start();
  const observed = await observeCrawl({
    config,
    events,
    queue,
    registry,
    logger,
    node: { id: worker.id, roles },
    credit,
    control: pause,
    nodes: () => listNodes(cacheRedis, config.name),
    progress: true,
    runs: redis?.runs(),
  });
  const stopProgress = showProgress(events, stats, {
    intervalSecs: config.crawler.progressIntervalSecs,
    tty: false,
    queued: async () => (await queue.depth("request")) + (await queue.depth("render")),
    logger,
  });
  console.error(`worker ${worker.id} (${roles.join(", ")}${renders ? ", browser" : ""}) joined ${config.name} on ${queueEngineName(config)}; modules: ${registry.names().join(", ") || "none"}`);

  const stopped = new Promise<string>((resolve) => {
    requestStop = resolve;
  });
  const removeSignals = onStopSignals(requestStop, (sig) => {
    console.error(`${sig} again: exiting now; un-acked work will be re-delivered to other workers`);
    process.exit(130);
  });
  const running = worker.run();
  const idleWatch = new AbortController();
  if (idleSecs !== undefined) {
    void whenIdleFor(queue, idleSecs * 1000, idleWatch.signal).then(() => {
      if (!idleWatch.signal.aborted) requestStop(`the queues were empty for ${idleSecs} s (--exit-when-idle)`);
    });
  }
  // a flow that fails still goes through the shutdown below (flush the sink, ack what is done)
  const reason = await Promise.race([
    stopped,
    running.then(
      () => "flows ended",
      (err: unknown) => {
        fatal ??= err instanceof Error ? err : new Error(String(err));
        return "a flow failed";
      },
    ),
  ]);
  idleWatch.abort();
  console.error(`stopping (${reason}): finishing in-flight work`);
  await scheduler.stop();
  await leader.stop();
  const outcome = await worker.stop(reason, config.crawler.shutdownTimeoutSecs * 1000);
  await running.catch((err: unknown) => console.error(`worker flow failed: ${String(err)}`));
  stopProgress();
  await observed.stop();
  pause.close();
  await sink.close();
  await nodes.stop();
  await politeness.close();
  await rendering.close();
  cacheRedis.disconnect();
  stopCountingRuns();
  recordTicks.unsubscribe();
  await queue.close();
  removeSignals();
  stats.stop();
  console.error(
    `worker ${worker.id} stopped: ${stats.pages} pages, ${stats.items} items, ${stats.retries} retries, ${stats.deferred} deferred, ${stats.deadLetters} dead letters, ${stats.dropped} items dropped by middleware; items: ${sink.describe()}${deliveryNote(config)}`,
  );
  printDroppedLinks(stats, logger);
  if (fatal) {
    console.error(`fatal: ${fatal.message}`);
    return 1;
  }
  if (outcome === "timeout") {
    console.error(
      `shutdown: in-flight work outlasted shutdown_timeout_secs (${config.crawler.shutdownTimeoutSecs} s); ` +
        (config.channelConfig.nats
          ? "what it still held stays un-acked in JetStream and is re-delivered (after the consumer's ack_wait)"
          : "what it still held stays pending in Redis and is re-delivered (claimed after claim_min_idle)"),
    );
    return 1;
  }
  return 0;
}
