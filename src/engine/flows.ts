import { merge, type Observable, type OperatorFunction, pipe } from "rxjs";
import { type Config, effectivePrefetch } from "../config/index.ts";
import type { EventBus } from "../events/bus.ts";
import type { Request } from "../model/index.ts";
import type { ModuleRegistry } from "../modules/registry.ts";
import { URL_HEADER } from "../modules/page.ts";
import type { Queue } from "../queue/queue.ts";
import type { RetryPolicy } from "../queue/retry-policy.ts";
import type { RateLimiter } from "../ratelimit/limiter.ts";
import type { ItemSink } from "../storage/sink.ts";
import {
  ack,
  type Downloader,
  download,
  type Fetched,
  fromQueue,
  generate,
  type Job,
  mapJob,
  type Message,
  parse,
  rateLimit,
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

/** task / parser_task → generate → request queue. */
export function taskFlow(deps: FlowDeps, topic: "task" | "parser_task", signal: AbortSignal): Observable<unknown> {
  return fromQueue(deps.queue, topic, { prefetch: 4, signal }).pipe(
    generate({
      registry: deps.registry,
      queue: deps.queue,
      events: deps.events,
      backlog: deps.config.crawler.generateBacklog,
      timeoutSecs: deps.config.downloadConfig.timeout,
      signal,
    }),
    ack(),
    settleFailures(deps),
  );
}

function rateOf(deps: FlowDeps): (req: Request) => number {
  const d = deps.config.downloadConfig;
  return (req) => {
    if (!d.enableRateLimit) return 0;
    const own = deps.registry.has(req.module) ? deps.registry.settings(req.module).rateLimit : undefined;
    return typeof own === "number" && own > 0 ? own : d.rateLimit;
  };
}

/** The request flow's first half: rate limit and download. */
function fetchStages(deps: FlowDeps): OperatorFunction<Job<Request>, Job<Fetched>> {
  return pipe(
    rateLimit(deps.limiter, { rateOf: rateOf(deps), maxWaitMs: deps.config.downloadConfig.maxWaitMs, events: deps.events }),
    download(deps.downloader, {
      concurrency: deps.config.crawler.taskConcurrency,
      events: deps.events,
      acceptStatus: (req, status) => {
        if (!deps.registry.has(req.module)) return false;
        const list = deps.registry.settings(req.module).handleStatuses;
        return Array.isArray(list) && list.includes(status);
      },
    }),
  );
}

/** request → rate limit → download → parse → items to sink, follow-ups to the queue → ack. */
export function requestFlow(deps: FlowDeps, signal: AbortSignal): Observable<unknown> {
  return fromQueue(deps.queue, "request", { prefetch: effectivePrefetch(deps.config), signal }).pipe(
    fetchStages(deps),
    parse(deps.registry, { timeoutSecs: deps.config.downloadConfig.timeout, events: deps.events }),
    route({ sink: deps.sink, queue: deps.queue, events: deps.events }),
    settleFailures(deps),
  );
}

/** Download-only: request → download → Response onto the `response` topic → ack. */
export function downloadOnlyFlow(deps: FlowDeps, signal: AbortSignal): Observable<unknown> {
  return fromQueue(deps.queue, "request", { prefetch: effectivePrefetch(deps.config), signal }).pipe(
    fetchStages(deps),
    mapJob("to_queue", async (f: Fetched) => {
      try {
        await deps.queue.publish("response", [{ message: f.response }]);
      } catch (err) {
        throw new StageError({ stage: "to_queue", reason: `enqueue failed: ${String(err)}`, retryable: true, url: f.url });
      }
      return f;
    }),
    ack(),
    settleFailures(deps),
  );
}

/** Parse-only: response topic → parse → route → ack. */
export function responseFlow(deps: FlowDeps, signal: AbortSignal): Observable<unknown> {
  return fromQueue(deps.queue, "response", { prefetch: effectivePrefetch(deps.config), signal }).pipe(
    mapJob("parse", (response): Fetched => {
      const url = response.headers.find(([k]) => k === URL_HEADER)?.[1] ?? "";
      return { response, fingerprint: response.requestHash ?? response.id, url };
    }),
    parse(deps.registry, { timeoutSecs: deps.config.downloadConfig.timeout, events: deps.events }),
    route({ sink: deps.sink, queue: deps.queue, events: deps.events }),
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

