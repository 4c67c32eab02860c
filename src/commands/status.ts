import { parseArgs } from "node:util";
import { type BudgetState, budgetTtlSecs, RedisBudgetStore } from "../bounds/budget-store.ts";
import { type Config, cacheRedisConnection } from "../config/index.ts";
import { listNodes } from "../engine/node-registry.ts";
import { printable } from "../text/printable.ts";
import { PRIORITIES, type Priority, TOPICS, type Topic } from "../model/index.ts";
import { openConnection } from "../queue/redis/connection.ts";
import { QueueKeys } from "../queue/redis/index.ts";
import { loadConfigFrom } from "./common.ts";

export const usage = `usage: status [--config PATH] [--json]

What the crawl in Redis looks like now: per topic and priority the stream length, messages
waiting (not yet delivered), pending (delivered, not acked), how long the oldest pending one has
been idle, delayed retries and dead letters; the live workers; and the runs with a budget
(max_requests / max_items): requests and items counted, and which budget is spent.

  --json   print it as JSON`;

export interface PriorityStatus {
  length: number;
  waiting: number;
  pending: number;
  oldestIdleMs: number;
  dead: number;
}
export interface TopicStatus {
  priorities: Record<Priority, PriorityStatus>;
  delayed: number;
}
export interface CrawlStatus {
  name: string;
  topics: Record<Topic, TopicStatus>;
  workers: Awaited<ReturnType<typeof listNodes>>;
  /** runs counted against a budget */
  budgets: BudgetState[];
}

/** Reads the status of the crawl `config.name` from Redis (read-only). */
export async function readStatus(config: Config): Promise<CrawlStatus> {
  const r = config.channelConfig.redis;
  const redis = await openConnection(r, "command", r.connectTimeoutMs, `${config.name}:status`);
  try {
    const keys = new QueueKeys(config.name, r.shards);
    const topics = {} as Record<Topic, TopicStatus>;
    for (const topic of TOPICS) {
      const streams = keys.streams(topic);
      const pipe = redis.pipeline();
      for (const s of streams) {
        pipe.xlen(s.key);
        pipe.call("XINFO", "GROUPS", s.key);
        pipe.xpending(s.key, keys.group, "-", "+", 1);
        pipe.xlen(keys.dlq(s.key));
      }
      pipe.zcard(keys.delayed(topic));
      const replies = ((await pipe.exec()) ?? []).map(([err, v]) => (err ? undefined : v));
      const priorities = Object.fromEntries(
        PRIORITIES.map((p) => [p, { length: 0, waiting: 0, pending: 0, oldestIdleMs: 0, dead: 0 }]),
      ) as Record<Priority, PriorityStatus>;
      streams.forEach((s, i) => {
        const st = priorities[s.priority];
        st.length += Number(replies[4 * i] ?? 0);
        for (const g of (replies[4 * i + 1] as unknown[][] | undefined) ?? []) {
          const f = new Map<string, unknown>();
          for (let j = 0; j < g.length; j += 2) f.set(String(g[j]), g[j + 1]);
          if (f.get("name") === keys.group) {
            st.waiting += Number(f.get("lag") ?? 0);
            st.pending += Number(f.get("pending") ?? 0);
          }
        }
        const oldest = (replies[4 * i + 2] as unknown[][] | undefined)?.[0];
        if (oldest) st.oldestIdleMs = Math.max(st.oldestIdleMs, Number(oldest[2]));
        st.dead += Number(replies[4 * i + 3] ?? 0);
      });
      topics[topic] = { priorities, delayed: Number(replies[replies.length - 1] ?? 0) };
    }
    const workers = await listNodes(redis, config.name);
    // the budgets live on the coordination connection ([cache.redis], by default the same Redis)
    const c = cacheRedisConnection(config);
    const same = c.redisHost === r.redisHost && c.redisPort === r.redisPort && c.redisDb === r.redisDb;
    const budgetRedis = same ? redis : await openConnection(c, "command", r.connectTimeoutMs, `${config.name}:status`);
    try {
      const budgets = await new RedisBudgetStore(budgetRedis, config.name, budgetTtlSecs(config)).list();
      return { name: config.name, topics, workers, budgets };
    } finally {
      if (!same) budgetRedis.disconnect();
    }
  } finally {
    redis.disconnect();
  }
}

export function formatStatus(s: CrawlStatus): string {
  const rows = [`crawl ${s.name}`, "topic        priority  length  waiting  pending  oldest-idle  delayed  dead"];
  for (const topic of TOPICS) {
    const t = s.topics[topic];
    for (const p of PRIORITIES) {
      const st = t.priorities[p];
      rows.push(
        `${topic.padEnd(12)} ${p.padEnd(8)} ${String(st.length).padStart(7)} ${String(st.waiting).padStart(8)} ${String(st.pending).padStart(8)}` +
          ` ${`${(st.oldestIdleMs / 1000).toFixed(1)}s`.padStart(12)} ${String(p === "high" ? t.delayed : "").padStart(8)} ${String(st.dead).padStart(5)}`,
      );
    }
  }
  rows.push(`workers: ${s.workers.length}`);
  for (const w of s.workers) rows.push(`  ${JSON.stringify(w)}`);
  if (s.budgets.length > 0) rows.push("runs with a budget:");
  for (const b of s.budgets) {
    const state = b.exhausted ? `${b.exhausted} ${b.limit ?? ""} reached: enqueueing stopped`.replace("  ", " ") : "within budget";
    rows.push(`  run ${printable(b.runId)} module ${printable(b.module)}: ${b.requests} requests, ${b.items} items; ${state}`);
  }
  return rows.join("\n");
}

export async function statusCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { config: { type: "string" }, json: { type: "boolean" }, help: { type: "boolean", short: "h" } },
  });
  if (values.help) {
    console.log(usage);
    return 0;
  }
  const status = await readStatus(await loadConfigFrom(values.config));
  console.log(values.json ? JSON.stringify(status, null, 2) : formatStatus(status));
  return 0;
}
