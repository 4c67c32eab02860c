// src/engine/observability.ts: what start-worker and run-standalone attach to a crawl's
// EventBus: log lines, metrics, and (with [api] port) the HTTP API and dashboard.

import type { SubmitRequest } from "../api/server.ts";
import { ConfigError } from "../config/index.ts";
import type { Config, LogLevel } from "../config/schema.ts";
import type { PauseControl } from "../control/pause.ts";
import type { EventBus } from "../events/bus.ts";
import { type TaskModel, taskModel } from "../model/index.ts";
import type { ModuleRegistry } from "../modules/registry.ts";
import type { CreditMeter } from "../observe/credit.ts";
import { Logger, logEvents } from "../observe/logger.ts";
import { EngineMetrics } from "../observe/metrics.ts";
import type { Queue } from "../queue/queue.ts";
// from its file, not the queue/redis barrel: the barrel loads ioredis, which a standalone crawl does not need
import { type RunBook, runView } from "../queue/redis/runs.ts";
import type { HttpServer } from "../runtime/serve.ts";
import type { NodeInfo } from "../observe/node-registry.ts";

/** The logger `[logger]` asks for, `--log-level` winning. */
export function createLogger(config: Config, level?: LogLevel): Logger {
  return new Logger({ ...config.logger, level: level ?? config.logger.level });
}

export interface ObserveOptions {
  config: Config;
  events: EventBus;
  queue: Queue;
  registry: ModuleRegistry;
  logger: Logger;
  node: { id: string; roles: readonly string[] };
  credit: CreditMeter;
  control: PauseControl;
  /** the fleet's workers (Redis); standalone: none */
  nodes?: () => Promise<NodeInfo[]>;
  /** a showProgress with the same logger runs (it prints warnings, errors, circuits, budgets) */
  progress?: boolean;
  /** the crawl's runs (distributed: Redis) */
  runs?: RunBook;
}

export interface Observed {
  metrics: EngineMetrics;
  /** set when [api] port is not 0 */
  server?: HttpServer;
  stop(): Promise<void>;
}

/** Logs the crawl's events, keeps its metrics and, with `[api] port`, serves the API. */
export async function observeCrawl(o: ObserveOptions): Promise<Observed> {
  const stopLogs = logEvents(o.events, o.logger, { progress: o.progress });
  const metrics = new EngineMetrics(o.events, {
    nodeId: o.node.id,
    credit: o.credit,
    queueStats: () => o.queue.stats(),
    pauseState: () => o.control.state(),
  });
  let server: HttpServer | undefined;
  if (o.config.api.port !== 0) {
    try {
      // loaded only with [api]: hono and its middleware are not part of a crawl without it
      const { startApi } = await import("../api/server.ts");
      server = await startApi(o.config.api, {
        name: o.config.name,
        metrics,
        node: o.node,
        queueStats: () => o.queue.stats(),
        nodes: o.nodes ?? (() => Promise.resolve([])),
        listDeadLetters: (t, n) => o.queue.listDeadLetters(t, n),
        replayDeadLetters: (t, n) => o.queue.replayDeadLetters(t, n),
        submit: (task) => submitTask(o.queue, o.registry, task, o.runs),
        control: o.control,
        runs: o.runs ? async () => (await o.runs!.list()).map(runView) : undefined,
        configuredRate: (key) => configuredRate(o.config, key),
      });
    } catch (err) {
      stopLogs();
      metrics.stop();
      // a port in use or an address not ours: the setting is the problem, said in one line
      const why = err instanceof Error ? err.message : String(err);
      throw new ConfigError("[api]", [{ file: "[api]", key: "api.port", message: `api.host/api.port: ${why}` }]);
    }
    o.logger.info(`API and dashboard on http://${server.host}:${server.port}/`);
  }
  return {
    metrics,
    server,
    async stop() {
      await server?.close();
      metrics.stop();
      stopLogs();
    },
  };
}

/** The rate `[download_config]` / `[rate_limits]` set for a politeness key (req/s, 0 = none). */
export function configuredRate(config: Config, key: string): number {
  const d = config.downloadConfig;
  if (!d.enableRateLimit) return 0;
  return Object.hasOwn(config.rateLimits, key) ? config.rateLimits[key] : d.rateLimit;
}

/** POST /start_work: a TaskModel for registered modules onto the task topic. */
export async function submitTask(queue: Queue, registry: ModuleRegistry, t: SubmitRequest, runs?: RunBook): Promise<string> {
  for (const m of t.modules) registry.get(m); // an unknown module fails here, with the known ones named
  const task: TaskModel = taskModel({ account: t.account, platform: t.platform, module: t.modules, priority: t.priority });
  await runs?.record(task.runId, t.modules);
  await queue.publish("task", [{ message: task }]);
  return task.runId;
}
