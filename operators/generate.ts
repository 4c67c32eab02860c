import type { OperatorFunction } from "rxjs";
import type { CrawlBounds } from "../src/bounds/bounds.ts";
import type { EventBus } from "../src/events/bus.ts";
import { type JsonValue, needsRenderer, type ParserTaskModel, type Request, type TaskModel } from "../src/model/index.ts";
import type { Seed } from "../src/modules/define.ts";
import type { ModuleRegistry } from "../src/modules/registry.ts";
import { buildRequest, DEFAULT_REQUEST_TIMEOUT_SECS, resolveSeed, seedFingerprint, urlRulesFor } from "../src/modules/requests.ts";
import { moduleLock } from "../src/modules/run-parse.ts";
import { type ModuleGuard, ModuleTimeout, moduleTimeoutSecs, underDeadline, type Watched } from "../src/modules/deadline.ts";
import type { UrlRules } from "../src/url/canonical.ts";
import { enqueueRequests } from "../src/queue/enqueue-requests.ts";
import type { Queue } from "../src/queue/queue.ts";
import { type Job, type Message, mapJob, StageError } from "./job.ts";

export interface GenerateOptions {
  registry: ModuleRegistry;
  queue: Queue;
  events?: EventBus;
  /** pause pulling start() while more than this many requests wait in the queue */
  backlog: number;
  /** default request timeout (s); default 30, as download_config.timeout */
  timeoutSecs?: number;
  /** canonical-URL defaults (`[crawler] keep_query_order`, `strip_params`); the module's settings win */
  urlRules?: UrlRules;
  /** stop pulling a module's start() once its run has spent a budget */
  bounds?: CrawlBounds;
  /** requests published per batch */
  batchSize?: number;
  /** tasks expanded at once */
  concurrency?: number;
  /**
   * aborting stops pulling start(): the task is re-queued, and whoever takes it next pulls from
   * the beginning (requests already queued are deduplicated)
   */
  signal?: AbortSignal;
  /** deadline (s) of start() and of each pull of its seeds, unless the module sets parseTimeoutSecs (crawler.parse_timeout_secs) */
  parseTimeoutSecs?: number;
  /** the watchdog that ends the process when start() blocks it (src/runtime/watchdog.ts) */
  guard?: ModuleGuard;
}

export interface Generated {
  modules: string[];
  requests: number;
  duplicates: number;
}

/**
 * Task (or ParserTask) → the first Requests of each of its modules, published to the request
 * queue as they are pulled from `start()` (dedup and enqueue in one step). An unbounded start()
 * is pulled only while the request backlog is below `backlog`, so memory stays flat.
 */
export function generate(options: GenerateOptions): OperatorFunction<Job<TaskModel | ParserTaskModel>, Job<Generated>> {
  return mapJob("generate", (task, message) => generateTask(task, message, options), options.concurrency ?? 4);
}

/** Module code of start() under its deadline; a timeout fails the task (retried, then dead-lettered). */
async function timed<T>(run: () => T | Promise<T>, secs: number, watched: Watched | undefined): Promise<T> {
  try {
    return await underDeadline(run, secs, "start", watched);
  } catch (err) {
    if (err instanceof ModuleTimeout) throw new StageError({ stage: "generate", reason: err.message, retryable: true });
    throw err;
  }
}

/** The seeds of start(), each pull under the deadline. */
async function* pull(seeds: AsyncIterable<Seed> | Iterable<Seed>, secs: number, watched: Watched | undefined): AsyncGenerator<Seed> {
  const it: AsyncIterator<Seed> | Iterator<Seed> = Symbol.asyncIterator in seeds ? seeds[Symbol.asyncIterator]() : (seeds as Iterable<Seed>)[Symbol.iterator]();
  for (;;) {
    const r = await timed(() => it.next(), secs, watched);
    if (r.done) return;
    yield r.value;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** longest stretch of start() pulled without letting other work run, ms */
const YIELD_EVERY_MS = 20;

const stopped = () =>
  new StageError({ stage: "generate", reason: "worker stopping before start() was exhausted", retryable: true, requeue: true, retryAfterMs: 0 });

async function generateTask(input: TaskModel | ParserTaskModel, message: Message, o: GenerateOptions): Promise<Generated> {
  const task = "accountTask" in input ? input.accountTask : input;
  const metadata: JsonValue = "accountTask" in input ? input.metadata : null;
  const names = task.module ?? o.registry.names();
  o.events?.emit({ type: "task_received", module: names.join(",") || null, runId: task.runId });
  const result: Generated = { modules: names, requests: 0, duplicates: 0 };
  const batchSize = o.batchSize ?? 100;
  let lastTouch = Date.now();
  let lastYield = performance.now();
  // a start() whose seeds are mostly duplicates never fills the backlog (nor, once the queue
  // has seen them, a batch), and the in-memory queue settles without I/O: give the event loop a
  // turn now and then, or downloads starve
  const yieldNowAndThen = async () => {
    if (performance.now() - lastYield > YIELD_EVERY_MS) {
      await sleep(0);
      lastYield = performance.now();
    }
  };

  for (const name of names) {
    if (!o.registry.has(name)) throw new StageError({ stage: "generate", reason: `unknown module ${JSON.stringify(name)}`, retryable: false });
    const module = o.registry.get(name);
    const settings = o.registry.settings(name);
    const origin = { task, module, settings, stepIdx: 0, timeoutSecs: o.timeoutSecs ?? DEFAULT_REQUEST_TIMEOUT_SECS, urlRules: urlRulesFor(settings, o.urlRules) };
    let batch: Request[] = [];
    let moduleAccepted = 0;
    let moduleDuplicates = 0;

    const flush = async () => {
      if (batch.length === 0) return;
      // flow control: wait while the request queue (and the render queue, for requests that
      // need a browser) is over its backlog
      const rendering = batch.some(needsRenderer);
      while ((await o.queue.depth("request")) > o.backlog || (rendering && (await o.queue.depth("render")) > o.backlog)) {
        if (o.signal?.aborted) throw stopped();
        await sleep(50);
        if (Date.now() - lastTouch > 10_000) {
          await message.touch().catch(() => {}); // a failed touch only risks an early reclaim
          lastTouch = Date.now();
        }
      }
      const r = await enqueueRequests(o.queue, batch);
      moduleAccepted += r.accepted;
      moduleDuplicates += r.duplicates;
      batch = [];
      await yieldNowAndThen();
    };

    const seenBefore = o.queue.seenBefore?.bind(o.queue);
    const deadline = moduleTimeoutSecs(settings, o.parseTimeoutSecs ?? 60);
    const record = o.guard ? (o.queue.poisonKey?.(message.delivery) ?? "") : undefined;
    const watched: Watched | undefined = o.guard && record !== undefined ? { guard: o.guard, record, label: `start() of module ${name}` } : undefined;
    // start() and every pull of its seeds run under the deadline (a sync generator costs no timer)
    const seeds = await timed(() => module.start({ task, settings, metadata, lock: (n, fn, opts) => moduleLock(o.registry.locks, n, fn, opts) }), deadline, watched);
    for await (const seed of pull(seeds as AsyncIterable<Seed> | Iterable<Seed>, deadline, watched)) {
      if (o.signal?.aborted) throw stopped();
      const resolved = resolveSeed(seed, origin);
      if (typeof resolved === "string") {
        o.events?.emit({ type: "warning", message: `module ${name} start(): ${resolved}` });
        continue;
      }
      // a seed the queue has certainly seen is a duplicate: no Request is built for it (as for
      // follow-ups), so a start() that repeats itself costs a lookup per seed, not an object
      const fp = seenBefore ? seedFingerprint(resolved, origin) : undefined;
      if (fp !== undefined && seenBefore!(fp)) {
        moduleDuplicates++;
        await yieldNowAndThen();
        continue;
      }
      batch.push(buildRequest(resolved, origin, fp));
      if (batch.length >= batchSize) {
        await flush();
        if (o.bounds?.isSpent(task.runId, name)) break;
      }
    }
    await flush();
    result.requests += moduleAccepted;
    result.duplicates += moduleDuplicates;
    o.events?.emit({ type: "requests_generated", module: name, count: moduleAccepted, duplicates: moduleDuplicates });
  }
  return result;
}
