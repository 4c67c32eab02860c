import { identity, merge, type Observable, type OperatorFunction, pipe } from "rxjs";
import { CrawlBounds } from "../bounds/bounds.ts";
import { type BudgetStore, MemoryBudgetStore } from "../bounds/budget-store.ts";
import { type Config, effectivePrefetch } from "../config/index.ts";
import type { PauseGate } from "../control/pause.ts";
import type { EventBus } from "../events/bus.ts";
import { MiddlewareChains } from "../middleware/chains.ts";
import { type Request, type Topic, type TopicMessages, URL_HEADER } from "../model/index.ts";
import type { ModuleRegistry } from "../modules/registry.ts";
import type { CreditMeter } from "../observe/credit.ts";
import type { Queue } from "../queue/queue.ts";
import type { RetryPolicy } from "../queue/retry-policy.ts";
import type { RateLimiter } from "../ratelimit/limiter.ts";
import type { ItemSink } from "../storage/sink.ts";
import { decideRedirect } from "../download/redirects.ts";
import { urlRulesFor } from "../modules/requests.ts";
import { enqueueRequests } from "../queue/enqueue-requests.ts";
import type { UrlRules } from "../url/canonical.ts";
import { createPoliteness, type PolitenessKit } from "./politeness.ts";
import {
  ack,
  budget,
  deferPausedModules,
  checkRequest,
  type Downloader,
  download,
  type Fetched,
  fromQueue,
  generate,
  type Job,
  mapJob,
  type Message,
  parse,
  politeness,
  requestMiddleware,
  retry,
  route,
  StageError,
} from "../../operators/index.ts";

/** Which stages a worker runs. Without `parse`, downloaded Responses go to the `response` topic. */
export type Role = "task" | "download" | "parse";
export const ALL_ROLES: readonly Role[] = ["task", "download", "parse"];

/** Everything the flows are built from. */
export interface FlowDeps {
  config: Config;
  queue: Queue;
  registry: ModuleRegistry;
  sink: ItemSink;
  events: EventBus;
  downloader: Downloader;
  limiter: RateLimiter;
  /**
   * Rate limits, concurrency caps, back-off, robots.txt, proxies and caches (createPoliteness).
   * Default: an in-memory kit built from `config`, using `limiter`.
   */
  politeness?: PolitenessKit;
  /** global middleware plus the modules' own; default: the modules' own only */
  middleware?: MiddlewareChains;
  /** depth and run budgets (max_depth, max_requests, max_items); default: counted in this process */
  bounds?: CrawlBounds;
  /** pause / resume (whole crawl, per module); default: never paused */
  pause?: PauseGate;
  /** where the sources report their credit in use (metrics, dashboard) */
  credit?: CreditMeter;
}

/** A flow's source: reads `topic` with credit, holding back while paused. */
function source<K extends Topic>(deps: FlowDeps, topic: K, prefetch: number, signal: AbortSignal, touch = false): Observable<Job<TopicMessages[K]>> {
  const read = fromQueue(deps.queue, topic, { prefetch, signal, touchEveryMs: touch ? touchEveryMs(deps.config) : 0, pause: deps.pause, credit: deps.credit });
  return deps.pause ? read.pipe(deferPausedModules(deps.pause)) : read;
}

const defaultKits = new WeakMap<FlowDeps, PolitenessKit>();
const defaultChains = new WeakMap<FlowDeps, MiddlewareChains>();
const defaultBounds = new WeakMap<FlowDeps, CrawlBounds>();

/** The deps' middleware (the modules' own when none is given; built once per deps). */
function middlewareOf(deps: FlowDeps): MiddlewareChains {
  if (deps.middleware) return deps.middleware;
  let chains = defaultChains.get(deps);
  if (!chains) {
    chains = new MiddlewareChains([], deps.registry);
    defaultChains.set(deps, chains);
  }
  return chains;
}

/** The crawl bounds of `config`, counted in `store`, with module settings from `registry`. */
export function createBounds(config: Config, registry: ModuleRegistry, store: BudgetStore, events?: EventBus): CrawlBounds {
  return new CrawlBounds({
    store,
    crawler: config.crawler,
    settingsOf: (m) => (registry.has(m) ? registry.settings(m) : undefined),
    emit: (e) => events?.emit(e),
  });
}

/** The deps' bounds (in-memory ones built once per deps when none are given). */
function boundsOf(deps: FlowDeps): CrawlBounds {
  if (deps.bounds) return deps.bounds;
  let b = defaultBounds.get(deps);
  if (!b) {
    b = createBounds(deps.config, deps.registry, new MemoryBudgetStore(), deps.events);
    defaultBounds.set(deps, b);
  }
  return b;
}

/** The deps' politeness kit (an in-memory one built once per deps when none is given). */
function politenessOf(deps: FlowDeps): PolitenessKit {
  if (deps.politeness) return deps.politeness;
  let kit = defaultKits.get(deps);
  if (!kit) {
    kit = createPoliteness(deps.config, undefined, { limiter: deps.limiter, events: deps.events });
    defaultKits.set(deps, kit);
  }
  return kit;
}

const urlRulesByConfig = new WeakMap<Config, UrlRules>();

/** The canonical-URL defaults of `[crawler]` (one object per config, so per-module rules are cached). */
function urlRulesOf(config: Config): UrlRules {
  let rules = urlRulesByConfig.get(config);
  if (!rules) urlRulesByConfig.set(config, (rules = { keepQueryOrder: config.crawler.keepQueryOrder, stripParams: config.crawler.stripParams }));
  return rules;
}

/** The parse stage with the engine's URL and item-dedup defaults. */
function parseStage(deps: FlowDeps) {
  return parse(deps.registry, {
    timeoutSecs: deps.config.downloadConfig.timeout,
    events: deps.events,
    urlRules: urlRulesOf(deps.config),
    dedupItemsByCanonical: deps.config.crawler.dedupItemsByCanonical,
    seenBefore: deps.queue.seenBefore?.bind(deps.queue),
  });
}

function retryPolicy(config: Config): RetryPolicy {
  const c = config.crawler;
  return { maxRetries: c.requestMaxRetries, baseDelayMs: c.retryBaseDelayMs, maxDelayMs: c.retryMaxDelayMs };
}

/** The retry stage, with a module's own `maxRetries` setting taking precedence. */
function settleFailures<T>(deps: FlowDeps): OperatorFunction<Job<T>, Job<T>> {
  const moduleOf = (m: Message): string | undefined => {
    const p = m.payload as { module?: unknown };
    return typeof p.module === "string" ? p.module : undefined;
  };
  return retry<T>({
    policy: retryPolicy(deps.config),
    events: deps.events,
    maxRetriesOf: (m) => {
      const name = moduleOf(m);
      if (!name || !deps.registry.has(name)) return undefined;
      const v = deps.registry.settings(name).maxRetries;
      return typeof v === "number" ? v : undefined;
    },
  });
}

/**
 * How often a flow touches its long-running deliveries: half the idle time after which another
 * worker may claim them, so a page slower than claim_min_idle is not processed twice at once.
 */
function touchEveryMs(config: Config): number {
  return Math.max(1, Math.floor(config.channelConfig.redis.claimMinIdle / 2));
}

/** task / parser_task → generate → request queue. */
export function taskFlow(deps: FlowDeps, topic: "task" | "parser_task", signal: AbortSignal): Observable<unknown> {
  return source(deps, topic, 4, signal).pipe(
    generate({
      registry: deps.registry,
      queue: deps.queue,
      events: deps.events,
      backlog: deps.config.crawler.generateBacklog,
      timeoutSecs: deps.config.downloadConfig.timeout,
      urlRules: urlRulesOf(deps.config),
      bounds: boundsOf(deps),
      signal,
    }),
    ack({ events: deps.events }),
    settleFailures(deps),
  );
}

/**
 * The request flow's first half: download middleware (before the request), politeness
 * (robots.txt, suspension/circuit, concurrency lease, GCRA slot), the run's request budget, and
 * download (response cache → feedback → proxy → module cookies → downloader).
 */
function fetchStages(deps: FlowDeps): OperatorFunction<Job<Request>, Job<Fetched>> {
  const kit = politenessOf(deps);
  kit.setEvents(deps.events);
  const stages = kit.stages(deps.downloader, deps.registry);
  const { registry } = deps;
  const middleware = middlewareOf(deps);
  return pipe(
    checkRequest((name) => registry.has(name)),
    // download middleware's beforeRequest runs first, so politeness sees the request as it is sent
    middleware.anyDownload ? requestMiddleware(middleware, { events: deps.events }) : identity,
    politeness(stages.gate),
    // (no stage at all when no module has a run budget)
    boundsOf(deps).anyBudget(deps.registry.names()) ? budget(boundsOf(deps), { onRefused: (req) => stages.gate.finish(req, undefined) }) : identity,
    download(stages.downloader, {
      concurrency: deps.config.crawler.taskConcurrency,
      events: deps.events,
      middleware,
      acceptStatus: (req, status) => {
        if (!deps.registry.has(req.module)) return false;
        const list = deps.registry.settings(req.module).handleStatuses;
        return Array.isArray(list) && list.includes(status);
      },
      redirect: (req, res, location) => {
        const settings = registry.has(req.module) ? registry.settings(req.module) : {};
        return decideRedirect(req, res, location, {
          maxRedirects: deps.config.downloadConfig.maxRedirects,
          urlRules: urlRulesFor(settings, urlRulesOf(deps.config)),
          allowedDomains: settings.allowedDomains,
        });
      },
    }),
  );
}

/** request → rate limit → download → parse → items to sink, follow-ups to the queue → ack. */
export function requestFlow(deps: FlowDeps, signal: AbortSignal): Observable<unknown> {
  return source(deps, "request", effectivePrefetch(deps.config), signal, true).pipe(
    fetchStages(deps),
    parseStage(deps),
    route({ sink: deps.sink, queue: deps.queue, events: deps.events, bounds: boundsOf(deps), middleware: middlewareOf(deps), maxItemBytes: deps.config.output.maxItemBytes }),
    settleFailures(deps),
  );
}

/** Download-only: request → download → Response onto the `response` topic → ack. */
export function downloadOnlyFlow(deps: FlowDeps, signal: AbortSignal): Observable<unknown> {
  return source(deps, "request", effectivePrefetch(deps.config), signal, true).pipe(
    fetchStages(deps),
    mapJob("to_queue", async (f: Fetched) => {
      try {
        // a followed redirect is a new request, not a response to parse
        if (f.redirect) await enqueueRequests(deps.queue, [f.redirect]);
        else await deps.queue.publish("response", [{ message: f.response }]);
      } catch (err) {
        throw new StageError({ stage: "to_queue", reason: `enqueue failed: ${String(err)}`, retryable: true, url: f.url });
      }
      return f;
    }),
    ack({ events: deps.events }),
    settleFailures(deps),
  );
}

/** Parse-only: response topic → parse → route → ack. */
export function responseFlow(deps: FlowDeps, signal: AbortSignal): Observable<unknown> {
  return source(deps, "response", effectivePrefetch(deps.config), signal, true).pipe(
    mapJob("parse", (response): Fetched => {
      const url = response.headers.find(([k]) => k === URL_HEADER)?.[1] ?? "";
      return { response, fingerprint: response.requestHash ?? response.id, url };
    }),
    parseStage(deps),
    route({ sink: deps.sink, queue: deps.queue, events: deps.events, bounds: boundsOf(deps), middleware: middlewareOf(deps), maxItemBytes: deps.config.output.maxItemBytes }),
    settleFailures(deps),
  );
}

/** Every flow a worker with these roles runs, merged. */
export function workerFlows(deps: FlowDeps, roles: readonly Role[], signal: AbortSignal): Observable<unknown> {
  const flows: Observable<unknown>[] = [];
  const has = (r: Role) => roles.includes(r);
  if (has("task")) flows.push(taskFlow(deps, "task", signal), taskFlow(deps, "parser_task", signal));
  if (has("download") && has("parse")) flows.push(requestFlow(deps, signal));
  else if (has("download")) flows.push(downloadOnlyFlow(deps, signal));
  if (has("parse")) flows.push(responseFlow(deps, signal));
  return merge(...flows);
}

