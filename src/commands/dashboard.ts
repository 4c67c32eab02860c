import { parseArgs } from "node:util";
import { startApi } from "../api/server.ts";
import { cacheRedisConnection } from "../config/index.ts";
import { RedisPauseControl } from "../control/pause.ts";
import { listNodes } from "../observe/node-registry.ts";
import { configuredRate, submitTask } from "../engine/observability.ts";
import { EventBus } from "../events/bus.ts";
import { PRIORITIES, TOPICS, uuidv4 } from "../model/index.ts";
import { EngineMetrics } from "../observe/metrics.ts";
import type { QueueStats } from "../queue/queue.ts";
import { openConnection } from "../redis/connection.ts";
import { openQueue } from "../queue/open-queue.ts";
import { RedisQueue, runView } from "../queue/redis/index.ts";
import { onShutdownSignal } from "../runtime/index.ts";
import { loadConfigFrom, loadRegistry, UsageError } from "./common.ts";
import { type CrawlStatus, readStatus } from "./status.ts";

export const usage = `usage: dashboard [--config PATH] [--port N] [--host H]

Serves the API and the dashboard for the crawl in Redis without crawling: queues, workers,
dead letters and pause/resume of the whole fleet. Reads Redis only, except for the actions
that need the API key (pause, resume, replay, start_work). Runs until SIGINT/SIGTERM.

  --port N   port to listen on (default: [api] port, which must then be set)
  --host H   address to listen on (default: [api] host)`;

function asQueueStats(s: CrawlStatus): QueueStats {
  const out = {} as QueueStats;
  for (const t of TOPICS) {
    const p = s.topics[t].priorities;
    out[t] = {
      ready: { high: p.high.waiting, normal: p.normal.waiting, low: p.low.waiting },
      inFlight: PRIORITIES.reduce((n, x) => n + p[x].pending, 0),
      delayed: s.topics[t].delayed,
      dead: PRIORITIES.reduce((n, x) => n + p[x].dead, 0),
    };
  }
  return out;
}

export async function dashboardCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { config: { type: "string" }, port: { type: "string" }, host: { type: "string" }, help: { type: "boolean", short: "h" } },
  });
  if (values.help) {
    console.log(usage);
    return 0;
  }
  const config = await loadConfigFrom(values.config);
  const port = values.port === undefined ? config.api.port : Number(values.port);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new UsageError(values.port === undefined ? "set [api] port in the config or give --port" : `--port must be a port number 1..65535, got ${values.port}`);
  }
  const api = { ...config.api, port, host: values.host ?? config.api.host };
  const registry = await loadRegistry(config);
  const r = config.channelConfig.redis;
  const redis = await openConnection(cacheRedisConnection(config), "command", r.connectTimeoutMs, `${config.name}:dashboard`);
  const queue = await openQueue(config, { readOnly: true });
  // runs are counted by the Redis queue's own steps; on JetStream there are none to show
  const runBook = queue instanceof RedisQueue ? queue.runs() : undefined;
  const control = new RedisPauseControl(redis, config.name);
  const statusRedis = await openConnection(r, "command", r.connectTimeoutMs, `${config.name}:dashboard-status`);
  const queueStats = async () => asQueueStats(await readStatus(config, statusRedis));
  const metrics = new EngineMetrics(new EventBus(), { nodeId: `dashboard-${uuidv4().slice(0, 8)}`, queueStats, pauseState: () => control.state() });
  const server = await startApi(api, {
    name: config.name,
    metrics,
    queueStats,
    nodes: () => listNodes(redis, config.name),
    listDeadLetters: (t, n) => queue.listDeadLetters(t, n),
    replayDeadLetters: (t, n) => queue.replayDeadLetters(t, n),
    submit: (task) => submitTask(queue, registry, task, runBook),
    control,
    runs: runBook ? async () => (await runBook.list()).map(runView) : undefined,
    configuredRate: (key) => configuredRate(config, key),
  });
  console.error(`dashboard of ${config.name} on http://${server.host}:${server.port}/`);
  await new Promise<void>((resolve) => {
    const remove = onShutdownSignal(() => {
      remove();
      resolve();
    });
  });
  await server.close();
  metrics.stop();
  await queue.close();
  redis.disconnect();
  statusRedis.disconnect();
  return 0;
}
