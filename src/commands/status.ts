import { parseArgs } from "node:util";
import type { Redis } from "ioredis";
import { type BudgetState, budgetTtlSecs, RedisBudgetStore } from "../bounds/budget-store.ts";
import { type Config, cacheRedisConnection } from "../config/index.ts";
import { listNodes } from "../observe/node-registry.ts";
import { printable } from "../text/printable.ts";
import { PRIORITIES, type Priority, TOPICS, type Topic } from "../model/index.ts";
import { openConnection } from "../redis/connection.ts";
import { listRuns, QueueKeys, RUN_TTL_SECS, runView } from "../queue/redis/index.ts";
import { type PauseState, pauseKeys, readPauseState } from "../control/pause.ts";
import { itemStreamKey } from "../storage/redis-sink.ts";
import { readLeader } from "../sync/leader.ts";
import { loadConfigFrom } from "./common.ts";

export const usage = `usage: status [--config PATH] [--all] [--json]

What the crawl in Redis (queues on JetStream with [channel_config.nats]) looks like now: whether it is finished (or paused); per topic and
priority the messages waiting (not yet delivered to any worker), pending (delivered, not
acked), how long the oldest pending one has been idle, delayed retries and dead letters; the
items stored per module (Redis sink); the live workers; the runs (submit's run ids) with
their progress and when they finished; and the runs with a budget (max_requests /
max_items): requests and items counted, and which budget is spent.

  --all    also show the rows that are all zero, and each stream's length (which counts
           consumed entries kept for minid_time too)
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
  /** items held by the Redis sink, per module */
  items: Record<string, number>;
  paused: PauseState;
  /** nothing waiting, in flight or delayed in any topic */
  finished: boolean;
  /** runs counted against a budget */
  budgets: BudgetState[];
  /** the elected leader (`<name>:leader:cron`), null when none holds the key */
  leader: Awaited<ReturnType<typeof readLeader>>;
  /** the runs known, newest first (runView) */
  runs: Array<ReturnType<typeof runView>>;
}

/** Reads the status of the crawl `config.name` from Redis (read-only), on `conn` or a connection of its own. */
export async function readStatus(config: Config, conn?: Redis): Promise<CrawlStatus> {
  const r = config.channelConfig.redis;
  const redis = conn ?? (await openConnection(r, "command", r.connectTimeoutMs, `${config.name}:status`));
  try {
    const topics = config.channelConfig.nats ? await jetStreamTopics(config) : await redisTopics(config, redis);
    const workers = await listNodes(redis, config.name);
    const finished = TOPICS.every((t) => topics[t].delayed === 0 && PRIORITIES.every((p) => topics[t].priorities[p].waiting === 0 && topics[t].priorities[p].pending === 0));
    const items = await storedItems(redis, config.name);
    // runs are counted by the Redis queue's own steps (none on JetStream)
    const runs = config.channelConfig.nats ? [] : (await listRuns(redis, new QueueKeys(config.name, r.shards), 20)).map(runView);
    const paused = await readPauseState(redis, pauseKeys(config.name));
    // the budgets live on the coordination connection ([cache.redis], by default the same Redis)
    const c = cacheRedisConnection(config);
    const same = c.redisHost === r.redisHost && c.redisPort === r.redisPort && c.redisDb === r.redisDb;
    const budgetRedis = same ? redis : await openConnection(c, "command", r.connectTimeoutMs, `${config.name}:status`);
    try {
      const budgets = await new RedisBudgetStore(budgetRedis, config.name, budgetTtlSecs(config)).list();
      // the leader key lives there too, beside the locks
      return { name: config.name, topics, workers, items, paused, finished, budgets, leader: await readLeader(budgetRedis, config.name), runs };
    } finally {
      if (!same) budgetRedis.disconnect();
    }
  } finally {
    if (!conn) redis.disconnect();
  }
}

/** Per topic and priority, from the Redis Streams (XINFO GROUPS lag and pending, XPENDING, dead-letter streams). */
async function redisTopics(config: Config, redis: Redis): Promise<Record<Topic, TopicStatus>> {
    const keys = new QueueKeys(config.name, config.channelConfig.redis.shards);
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
    return topics;
}

/** Per topic and priority, from JetStream: consumer num_pending (waiting) and num_ack_pending (pending), the _dlq subjects. */
async function jetStreamTopics(config: Config): Promise<Record<Topic, TopicStatus>> {
  const { NatsQueue } = await import("../queue/nats/nats-queue.ts");
  const queue = await NatsQueue.connect(config, { readOnly: true });
  try {
    const depths = await queue.depths();
    const topics = {} as Record<Topic, TopicStatus>;
    for (const topic of TOPICS) {
      const priorities = Object.fromEntries(
        PRIORITIES.map((p) => {
          const d = depths[topic][p];
          return [p, { length: d.length, waiting: d.waiting, pending: d.pending, oldestIdleMs: 0, dead: d.dead }];
        }),
      ) as Record<Priority, PriorityStatus>;
      // a retry waiting for its due time is held by the server as ack-pending: counted in pending
      topics[topic] = { priorities, delayed: 0 };
    }
    return topics;
  } finally {
    await queue.close();
  }
}

/** The Redis sink's item streams (`<name>:items:<module>`) and their lengths. */
async function storedItems(redis: Redis, name: string): Promise<Record<string, number>> {
  const prefix = itemStreamKey(name, "");
  const keys = new Set<string>();
  let cursor = "0";
  do {
    const [next, found] = await redis.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 500);
    cursor = next;
    for (const k of found) if (!k.endsWith(":seen")) keys.add(k);
  } while (cursor !== "0");
  const out: Record<string, number> = {};
  for (const k of [...keys].sort()) {
    const n = await redis.xlen(k).catch(() => undefined); // not a stream: not ours
    if (n !== undefined) out[k.slice(prefix.length)] = n;
  }
  return out;
}

/** Left-aligned first columns, right-aligned numbers. */
function table(header: string[], rows: string[][], leftColumns: number): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => (i < leftColumns ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ").trimEnd();
  return [line(header), ...rows.map(line)];
}

function age(secs: number): string {
  if (secs < 120) return `${secs}s`;
  if (secs < 7200) return `${Math.round(secs / 60)}m`;
  return `${(secs / 3600).toFixed(1)}h`;
}

/** The status for a terminal: all-zero rows hidden unless `all`; network text escaped. */
export function formatStatus(s: CrawlStatus, options: { all?: boolean } = {}): string {
  const out: string[] = [];
  let waiting = 0;
  let pending = 0;
  let delayed = 0;
  for (const t of TOPICS) {
    delayed += s.topics[t].delayed;
    for (const p of PRIORITIES) {
      waiting += s.topics[t].priorities[p].waiting;
      pending += s.topics[t].priorities[p].pending;
    }
  }
  const state = s.paused.all
    ? "PAUSED (resume with: resume)"
    : s.finished
      ? "finished: nothing waiting, in flight or delayed"
      : `running: ${waiting} waiting, ${pending} in flight, ${delayed} delayed`;
  out.push(`crawl ${s.name}: ${state}`);
  if (s.paused.modules.length > 0) out.push(`paused modules: ${s.paused.modules.map(printable).join(", ")}`);
  out.push("");

  const header = ["topic", "priority", "waiting", "pending", "oldest-idle", "delayed", "dead", ...(options.all ? ["length"] : [])];
  const rows: string[][] = [];
  for (const topic of TOPICS) {
    const t = s.topics[topic];
    for (const p of PRIORITIES) {
      const st = t.priorities[p];
      const shownDelayed = p === "high" ? t.delayed : 0;
      if (!options.all && st.waiting === 0 && st.pending === 0 && shownDelayed === 0 && st.dead === 0) continue;
      rows.push([
        topic,
        p,
        String(st.waiting),
        String(st.pending),
        st.pending > 0 ? `${(st.oldestIdleMs / 1000).toFixed(1)}s` : "-",
        p === "high" ? String(t.delayed) : "",
        String(st.dead),
        ...(options.all ? [String(st.length)] : []),
      ]);
    }
  }
  if (rows.length === 0) out.push("queues: all empty (--all shows every row)");
  else out.push(...table(header, rows, 2));
  out.push("");

  const modules = Object.entries(s.items);
  if (modules.length > 0) {
    out.push(...table(["module", "items stored"], modules.map(([m, n]) => [printable(m), String(n)]), 1));
    out.push("");
  }

  out.push(s.leader ? `leader: ${printable(s.leader.id)} (term ${s.leader.term}, lease ${(s.leader.leaseLeftMs / 1000).toFixed(1)} s left)` : "leader: none");
  if (s.workers.length === 0) out.push("workers: none alive");
  else {
    const now = Date.now() / 1000;
    out.push(`workers: ${s.workers.length}`);
    // browser pages in flight, once a worker with a browser (--browser) is in the fleet
    const browsers = s.workers.some((w) => typeof w.rendering === "number");
    out.push(
      ...table(
        ["id", "host", "pid", "roles", "pages", ...(browsers ? ["rendering"] : []), "age", "heartbeat"],
        s.workers.map((w) => [
          printable(w.id.slice(0, 8)),
          printable(w.hostname),
          String(w.pid ?? "?"),
          printable((w.roles ?? []).join(",")),
          String(w.pages ?? 0),
          ...(browsers ? [typeof w.rendering === "number" ? String(w.rendering) : "-"] : []),
          w.started_at ? age(Math.max(0, Math.round(now - w.started_at))) : "?",
          `${Math.max(0, Math.round(now - w.last_heartbeat))}s ago`,
        ]),
        4,
      ),
    );
  }
  if (s.runs.length > 0) {
    out.push("", `runs (a finished run is kept ${RUN_TTL_SECS / 86400} days):`);
    const when = (iso: unknown) => (typeof iso === "string" ? iso.replace("T", " ").slice(0, 19) : "-");
    out.push(
      ...table(
        ["run", "modules", "state", "pages", "items", "dead", "open", "started", "finished at"],
        s.runs.map((r) => [
          String(r.run_id),
          printable((r.modules as string[]).join(",")),
          String(r.state),
          String(r.pages),
          String(r.items),
          String(r.dead_letters),
          String(r.open),
          when(r.started_at),
          when(r.finished_at),
        ]),
        3,
      ),
    );
  }
  if (s.budgets.length > 0) out.push("", "runs with a budget:");
  for (const b of s.budgets) {
    const state = b.exhausted ? `${b.exhausted} ${b.limit ?? ""} reached: enqueueing stopped`.replace("  ", " ") : "within budget";
    out.push(`  run ${printable(b.runId)} module ${printable(b.module)}: ${b.requests} requests, ${b.items} items; ${state}`);
  }
  return out.join("\n");
}

export async function statusCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { config: { type: "string" }, json: { type: "boolean" }, all: { type: "boolean" }, help: { type: "boolean", short: "h" } },
  });
  if (values.help) {
    console.log(usage);
    return 0;
  }
  const status = await readStatus(await loadConfigFrom(values.config));
  console.log(values.json ? JSON.stringify(status, null, 2) : formatStatus(status, { all: values.all }));
  return 0;
}
