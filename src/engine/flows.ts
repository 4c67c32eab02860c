import { identity, merge, type Observable, type OperatorFunction, pipe } from "rxjs";
import { CrawlBounds } from "../bounds/bounds.ts";
import { type BudgetStore, MemoryBudgetStore } from "../bounds/budget-store.ts";
import { type Config, effectivePrefetch } from "../config/index.ts";
import type { PauseGate } from "../control/pause.ts";
import type { EventBus } from "../events/bus.ts";
import { MiddlewareChains } from "../middleware/chains.ts";
import { type Request, type Topic, type TopicMessages, URL_HEADER } from "../model/index.ts";
import type { ModuleGuard } from "../modules/deadline.ts";
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
// each operator from its own file, not the operators/ barrel: the barrel also exports
// fromRedisStream, which loads ioredis (~17 MB) into every standalone crawl
import { ack } from "../../operators/ack.ts";
import { budget } from "../../operators/budget.ts";
import { checkRequest } from "../../operators/check-request.ts";
import { deferPausedModules } from "../../operators/defer-paused-modules.ts";
import { type Downloader, download, type Fetched } from "../../operators/download.ts";
import { fromQueue } from "../../operators/from-queue.ts";
import { generate } from "../../operators/generate.ts";
import { type Job, mapJob, type Message, StageError } from "../../operators/job.ts";
import { parse } from "../../operators/parse.ts";
import { politeness } from "../../operators/politeness.ts";
import { requestMiddleware } from "../../operators/request-middleware.ts";
import { retry } from "../../operators/retry.ts";
import { route } from "../../operators/route.ts";

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
  /** the watchdog that ends the process when module code blocks it past its deadline */
  guard?: ModuleGuard;
  /**
   * This worker can render (it has a browser): it also reads the `render` topic (requests with
   * render "browser" | "auto"). A worker without never takes rendering work.
   */
  renders?: boolean;
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
    chains = new MiddlewareChains([], deps.registry, deps.config.crawler.parseTimeoutSecs);
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
    kit = createPoliteness(deps.config, undefined, { limiter: deps.limiter, events: deps.events, allowedDomainsOf: (m) => (deps.registry.has(m) ? deps.registry.settings(m).allowedDomains : undefined) });
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
    parseTimeoutSecs: deps.config.crawler.parseTimeoutSecs,
    maxFollowsPerPage: deps.config.crawler.maxFollowsPerPage,
    guard: deps.guard,
    poisonKey: (m) => deps.queue.poisonKey?.(m.delivery),
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
 * worker may claim them (Redis claim_min_idle, JetStream ack_wait), so a page slower than claim_min_idle is not processed twice at once.
 */
function touchEveryMs(config: Config): number {
  const idle = config.channelConfig.nats ? config.channelConfig.nats.ackWaitMs : config.channelConfig.redis.claimMinIdle;
  return Math.max(1, Math.floor(idle / 2));
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
      parseTimeoutSecs: deps.config.crawler.parseTimeoutSecs,
      guard: deps.guard,
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
function fetchStages(deps: FlowDeps, concurrency = deps.config.crawler.taskConcurrency): OperatorFunction<Job<Request>, Job<Fetched>> {
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
      concurrency,
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
          sensitiveHeaders: settings.sensitiveHeaders,
        });
      },
    }),
  );
}

/**
 * What a request topic is read with: `request` with the crawl's prefetch and concurrency;
 * `render` with twice the browser's pages, so a worker holds little rendering work it cannot
 * start soon (another browser worker may be idle).
 */
function readPlan(deps: FlowDeps, topic: "request" | "render"): { prefetch: number; concurrency: number } {
  if (topic === "request") return { prefetch: effectivePrefetch(deps.config), concurrency: deps.config.crawler.taskConcurrency };
  const n = deps.config.browser.concurrency * 2;
  return { prefetch: n, concurrency: n };
}

/** request → rate limit → download → parse → items to sink, follow-ups to the queue → ack. */
export function requestFlow(deps: FlowDeps, signal: AbortSignal, topic: "request" | "render" = "request"): Observable<unknown> {
  const plan = readPlan(deps, topic);
  return source(deps, topic, plan.prefetch, signal, true).pipe(
    fetchStages(deps, plan.concurrency),
    parseStage(deps),
    route({ sink: deps.sink, queue: deps.queue, events: deps.events, bounds: boundsOf(deps), middleware: middlewareOf(deps), maxItemBytes: deps.config.output.maxItemBytes }),
    settleFailures(deps),
  );
}

/** Download-only: request → download → Response onto the `response` topic → ack. */
export function downloadOnlyFlow(deps: FlowDeps, signal: AbortSignal, topic: "request" | "render" = "request"): Observable<unknown> {
  const plan = readPlan(deps, topic);
  return source(deps, topic, plan.prefetch, signal, true).pipe(
    fetchStages(deps, plan.concurrency),
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
  if (has("download") && has("parse")) flows.push(requestFlow(deps, signal), ...(deps.renders ? [requestFlow(deps, signal, "render")] : []));
  else if (has("download")) flows.push(downloadOnlyFlow(deps, signal), ...(deps.renders ? [downloadOnlyFlow(deps, signal, "render")] : []));
  if (has("parse")) flows.push(responseFlow(deps, signal));
  return merge(...flows);
}

