// src/api/server.ts: mocra's `[api]` as a Hono app: the dashboard, health, Prometheus metrics,
// the engine snapshot, and the key-protected control routes. The same app serves start-worker,
// run-standalone and the read-only `dashboard` command; what differs is the ApiSources given.

import { Buffer } from "node:buffer";
import { timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import { Hono, type MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { rateLimiter } from "hono-rate-limiter";
import type { ApiConfig } from "../config/schema.ts";
import type { PauseControl } from "../control/pause.ts";
import type { NodeInfo } from "../observe/node-registry.ts";
import { isPriority, PRIORITIES, type Priority, TOPICS, type Topic } from "../model/index.ts";
import type { EngineMetrics } from "../observe/metrics.ts";
import type { DeadLetter, QueueStats } from "../queue/queue.ts";
import { runtime } from "../runtime/index.ts";
import { type HttpServer, serveHttp } from "../runtime/serve.ts";
import { printable } from "../text/printable.ts";
import { isIpLiteral } from "../runtime/ip-ranges.ts";

/** A task to submit (POST /start_work), as mocra's TaskModel fields. */
export interface SubmitRequest {
  modules: string[];
  account: string;
  platform: string;
  priority: Priority;
}

/** What the API reads and steers; each command supplies its own. */
export interface ApiSources {
  name: string;
  /** this process's metrics (a worker or a standalone run); the dashboard command has its own, from Redis only */
  metrics: EngineMetrics;
  /** the node serving, if it crawls */
  node?: { id: string; roles: readonly string[] };
  queueStats(): Promise<QueueStats>;
  nodes(): Promise<NodeInfo[]>;
  listDeadLetters(topic: Topic, count: number): Promise<DeadLetter[]>;
  replayDeadLetters(topic: Topic, count: number): Promise<number>;
  /** enqueues the task, returns its run id; throws an Error with a message for bad input */
  submit(task: SubmitRequest): Promise<string>;
  control: PauseControl;
  /** the crawl's runs, newest first (distributed: Redis); absent = none known */
  runs?(): Promise<RunRow[]>;
  /** the configured rate (req/s, 0 = none) of a politeness key, for keys the metrics know no rate of */
  configuredRate?(key: string): number;
}

/** A run as the API shows it (runView). */
export type RunRow = Record<string, unknown> & { run_id: string; state: string; pages: number; items: number; open: number };

/** The crawl's figures the dashboard shows: summed over the runs, else the workers' heartbeats, else this process. */
interface Fleet {
  pages: number;
  items: number;
  errors: number;
  retries: number;
  deferrals: number;
  deadLetters: number;
  /** where the figures come from */
  source: "runs" | "workers" | "process";
}

/** One sample of the fleet's counters, kept server-side so the chart has history when first loaded. */
interface Sample {
  t: number;
  pages: number;
  items: number;
}

/** The last HISTORY samples (one per second while the API serves). */
const HISTORY = 120;

export class FleetHistory {
  readonly samples: Sample[] = [];

  add(sample: Sample): void {
    const last = this.samples[this.samples.length - 1];
    if (last && sample.t - last.t < 500) return; // a poll right after the sampler: one sample
    this.samples.push(sample);
    if (this.samples.length > HISTORY) this.samples.shift();
  }
}

const DASHBOARD = readFileSync(new URL("./dashboard.html", import.meta.url), "utf8");
const startedAt = Date.now();

/** The presented key: `Authorization: Bearer <key>` or `x-api-key: <key>`. */
function presentedKey(headers: Headers): string | undefined {
  const x = headers.get("x-api-key");
  if (x) return x;
  const auth = headers.get("authorization");
  return auth?.startsWith("Bearer ") ? auth.slice(7) : undefined;
}

function sameKey(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Whether the request presents the configured key (never true when none is configured). */
function hasKey(apiKey: string, headers: Headers): boolean {
  const key = presentedKey(headers);
  return apiKey !== "" && key !== undefined && sameKey(key, apiKey);
}

/** The host name of a Host header value (no port, IPv6 without brackets, lower case). */
function hostName(value: string): string {
  const v = value.trim().toLowerCase();
  if (v.startsWith("[")) return v.slice(1, v.indexOf("]") > 0 ? v.indexOf("]") : undefined);
  const colon = v.lastIndexOf(":");
  return (colon >= 0 ? v.slice(0, colon) : v).replace(/\.$/, "");
}

/**
 * Against DNS rebinding (a page on evil.example whose name now resolves to this API): a request
 * is served only when its Host is an IP address, localhost, the listening host or one of
 * `[api] allowed_hosts`. A rebinding page can only send its own name.
 */
function requireKnownHost(api: ApiConfig): MiddlewareHandler {
  const names = new Set(["localhost", hostName(api.host), ...api.allowedHosts.map(hostName)]);
  return async (c, next) => {
    const host = c.req.header("host");
    const name = host === undefined ? undefined : hostName(host);
    if (name === undefined || !(names.has(name) || isIpLiteral(name) || name.endsWith(".localhost"))) {
      return c.json({ error: `Host ${JSON.stringify(printable(host ?? ""))} is not this API's address or one of [api] allowed_hosts` }, 403);
    }
    await next();
  };
}

/** mocra's auth: no key configured → 403; a missing or wrong key → 401. */
function requireKey(apiKey: string): MiddlewareHandler {
  return async (c, next) => {
    if (!apiKey) return c.json({ error: "this route needs [api] api_key to be set in the configuration" }, 403);
    const key = presentedKey(c.req.raw.headers);
    if (key === undefined || !sameKey(key, apiKey)) return c.json({ error: "missing or wrong API key (Authorization: Bearer <key> or x-api-key)" }, 401);
    await next();
  };
}

function topicParam(value: string | undefined, fallback: Topic): Topic {
  if (value === undefined || value === "") return fallback;
  if (!TOPICS.includes(value as Topic)) throw new BadRequest(`topic must be one of ${TOPICS.join(", ")}, got ${JSON.stringify(value)}`);
  return value as Topic;
}

function countParam(value: string | undefined, fallback: number, max: number): number {
  if (value === undefined || value === "") return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new BadRequest(`count must be a whole number >= 1, got ${JSON.stringify(value)}`);
  return Math.min(n, max);
}

class BadRequest extends Error {}

/** A dead letter as the API shows it: network text escaped, no binary bodies. */
export function deadLetterView(d: DeadLetter): Record<string, string> {
  const m = d.message as { url?: unknown; module?: unknown } | undefined;
  const payload =
    d.message === undefined
      ? "(undecodable payload)"
      : JSON.stringify(d.message, (_k, v: unknown) => (v instanceof Uint8Array ? `<${v.byteLength} bytes>` : v));
  return {
    id: d.id,
    topic: d.topic,
    priority: d.priority,
    reason: printable(d.reason),
    original_id: d.originalId,
    url: typeof m?.url === "string" ? printable(m.url) : "",
    module: typeof m?.module === "string" ? printable(m.module) : "",
    payload: printable(payload.length > 2000 ? `${payload.slice(0, 1999)}…` : payload),
  };
}

/** Caches a slow read for `ms` (the dashboard polls every second; Redis is read at most that often). */
function cached<T>(ms: number, read: () => Promise<T>): () => Promise<T> {
  let at = 0;
  let value: Promise<T> | undefined;
  return () => {
    const now = Date.now();
    if (!value || now - at > ms) {
      at = now;
      value = read();
      value.catch(() => (value = undefined));
    }
    return value;
  };
}

interface Reads {
  stats: () => Promise<QueueStats>;
  nodes: () => Promise<NodeInfo[]>;
  dead: () => Promise<DeadLetter[]>;
  runs: () => Promise<RunRow[]>;
}

/** The fleet's counters: the runs' (exact, from Redis), else the heartbeats', else this process's. */
function fleetOf(s: ApiSources, nodes: NodeInfo[], runs: RunRow[]): Fleet {
  const t = s.metrics.totals;
  if (runs.length > 0) {
    const sum = (k: string) => runs.reduce((n, r) => n + (Number(r[k]) || 0), 0);
    return { pages: sum("pages"), items: sum("items"), errors: sum("http_errors"), retries: sum("retries"), deferrals: sum("deferred"), deadLetters: sum("dead_letters"), source: "runs" };
  }
  if (nodes.length > 0 && !s.node) {
    const sum = (k: "pages" | "items") => nodes.reduce((n, w) => n + (w[k] ?? 0), 0);
    return { ...t, pages: sum("pages"), items: sum("items"), source: "workers" };
  }
  return { ...t, source: "process" };
}

/**
 * What the badge says: paused (the whole crawl), running (work queued, in flight or delayed),
 * finished (nothing left, and a run finished), idle (nothing left, nothing run).
 */
function crawlState(paused: boolean, stats: QueueStats | undefined, runs: RunRow[], fleet: Fleet): "paused" | "running" | "finished" | "idle" | "unknown" {
  if (paused) return "paused";
  if (!stats) return "unknown";
  const busy = TOPICS.some((t) => stats[t].inFlight + stats[t].delayed + PRIORITIES.reduce((n, p) => n + stats[t].ready[p], 0) > 0);
  if (busy || runs.some((r) => r.state === "running")) return "running";
  return runs.some((r) => r.state === "finished") || fleet.pages > 0 ? "finished" : "idle";
}

/** A run as shown without the API key: its counts, not the reasons of its dead letters. */
function withoutReasons(run: RunRow): RunRow {
  const { dead_letters_by_reason: _, ...counts } = run;
  return counts;
}

/** Samples the fleet's counters into `history` (the chart's history, kept server-side). */
async function sampleFleet(s: ApiSources, reads: Reads, history: FleetHistory): Promise<void> {
  const [nodes, runs] = await Promise.all([reads.nodes().catch(() => []), reads.runs().catch(() => [])]);
  const f = fleetOf(s, nodes, runs);
  history.add({ t: Date.now(), pages: f.pages, items: f.items });
}

/** The JSON snapshot behind the dashboard (GET /observability/engine). */
async function engineSnapshot(s: ApiSources, reads: Reads, history: FleetHistory, withKey: boolean) {
  const [stats, nodes, dead, pause, runs] = await Promise.all([
    reads.stats().catch(() => undefined),
    reads.nodes().catch(() => []),
    withKey ? reads.dead().catch(() => []) : Promise.resolve([]),
    s.control.state().catch(() => ({ all: false, modules: [] })),
    reads.runs().catch(() => []),
  ]);
  const now = Date.now();
  const fleet = fleetOf(s, nodes, runs);
  history.add({ t: now, pages: fleet.pages, items: fleet.items });
  const queues = stats
    ? TOPICS.flatMap((topic) =>
        PRIORITIES.map((priority) => ({
          topic,
          priority,
          ready: stats[topic].ready[priority],
          ...(priority === "high" ? { pending: stats[topic].inFlight, delayed: stats[topic].delayed, dead: stats[topic].dead } : {}),
        })),
      )
    : [];
  return {
    name: s.name,
    time: now,
    runtime,
    node: s.node ? { id: s.node.id, roles: [...s.node.roles], uptime_secs: Math.round((now - startedAt) / 1000) } : null,
    paused: pause,
    state: crawlState(pause.all, stats, runs, fleet),
    totals: { ...s.metrics.totals },
    fleet: {
      ...fleet,
      /** browser pages in flight on the workers started with --browser */
      rendering: nodes.reduce((n, w) => n + (w.rendering ?? 0), 0),
    },
    history: history.samples,
    // dead letters by reason quote what failed (URLs, module headers): only with the key
    runs: runs.slice(0, 10).map((r) => (withKey ? r : withoutReasons(r))),
    errors_by_kind: s.metrics.errorsByKind(),
    queues,
    queues_readable: stats !== undefined,
    workers: nodes.map((w) => ({
      id: printable(w.id),
      hostname: printable(w.hostname),
      pid: w.pid ?? null,
      roles: (w.roles ?? []).map(printable),
      pages: w.pages ?? 0,
      items: w.items ?? 0,
      rendering: typeof w.rendering === "number" ? w.rendering : null,
      last_heartbeat: w.last_heartbeat,
      age_secs: w.started_at ? Math.max(0, Math.round(now / 1000 - w.started_at)) : null,
    })),
    // a key whose rate no event told yet shows the configured one
    domains: s.metrics.domainRows(20).map((d) => (d.rate ? d : { ...d, rate: s.configuredRate?.(d.key) ?? 0 })),
    // the letters carry payloads (URLs, module headers): only with the key; the counts are in `queues`
    dead_letters: dead.map(deadLetterView),
    dead_letters_hidden: !withKey,
  };
}

/** Builds the app: routes and auth as mocra's (see the README's API section). */
export function createApi(api: ApiConfig, s: ApiSources, history = new FleetHistory()): Hono {
  const app = new Hono();
  const reads: Reads = {
    stats: cached(900, () => s.queueStats()),
    nodes: cached(900, () => s.nodes()),
    runs: cached(900, () => (s.runs ? s.runs() : Promise.resolve([]))),
    dead: cached(1900, async () => (await Promise.all(TOPICS.map((t) => s.listDeadLetters(t, 10)))).flat().slice(-30)),
  };

  app.use("*", requireKnownHost(api));
  // a body over the limit is refused as it arrives (Content-Length or counted while streaming), not read whole
  app.use(
    "*",
    bodyLimit({
      maxSize: api.maxBodyBytes,
      onError: (c) => c.json({ error: `request body over [api] max_body_bytes (${api.maxBodyBytes} bytes)` }, 413),
    }),
  );

  app.onError((err, c) => {
    if (err instanceof BadRequest) return c.json({ error: err.message }, 400);
    return c.json({ error: printable(err instanceof Error ? err.message : String(err)) }, 500);
  });

  // no key, no rate limit
  app.get("/", (c) => c.html(DASHBOARD));
  app.get("/health", (c) => c.json({ status: "ok", name: s.name, node: s.node?.id ?? null, runtime, uptime_secs: Math.round((Date.now() - startedAt) / 1000) }));

  if (api.rateLimit > 0) {
    const perWindow = api.rateLimit >= 1 ? Math.round(api.rateLimit) : 1;
    app.use(
      "*",
      rateLimiter({
        windowMs: api.rateLimit >= 1 ? 1000 : Math.round(1000 / api.rateLimit),
        limit: perWindow,
        standardHeaders: "draft-6",
        keyGenerator: (c) => presentedKey(c.req.raw.headers) ?? "anonymous",
        message: { error: `over [api] rate_limit (${api.rateLimit} requests/s per caller)` },
      }),
    );
  }

  // monitoring: no key
  app.get("/metrics", async (c) => c.body(await s.metrics.render(), 200, { "content-type": s.metrics.contentType }));
  // without the key: counts only (dead-letter payloads and reasons need the key, as /dlq does)
  app.get("/observability/engine", async (c) => c.json(await engineSnapshot(s, reads, history, hasKey(api.apiKey, c.req.raw.headers))));
  // runs: their counts, state and finish time (a finished run is kept RUN_TTL_SECS); the dead
  // letters' reasons only with the key
  app.get("/runs", async (c) => {
    const withKey = hasKey(api.apiKey, c.req.raw.headers);
    return c.json((await reads.runs()).map((r) => (withKey ? r : withoutReasons(r))));
  });
  app.get("/runs/:id", async (c) => {
    const run = (await reads.runs()).find((r) => r.run_id === c.req.param("id"));
    if (!run) return c.json({ error: `no run ${printable(c.req.param("id"))} (unknown, or expired)` }, 404);
    return c.json(hasKey(api.apiKey, c.req.raw.headers) ? run : withoutReasons(run));
  });

  // control: key required
  const key = requireKey(api.apiKey);
  app.post("/start_work", key, async (c) => {
    let body: Record<string, unknown>;
    try {
      body = (await c.req.json()) as Record<string, unknown>;
    } catch {
      throw new BadRequest('the body must be JSON: {"module": "name" or ["a", "b"], "account"?, "platform"?, "priority"?}');
    }
    const m = body.module;
    const modules = typeof m === "string" ? [m] : Array.isArray(m) && m.every((x) => typeof x === "string") ? (m as string[]) : undefined;
    if (!modules || modules.length === 0) throw new BadRequest('"module" must be a module name or a non-empty list of names');
    const priority = body.priority ?? "normal";
    if (typeof priority !== "string" || !isPriority(priority)) throw new BadRequest('"priority" must be high, normal or low');
    const str = (v: unknown, field: string) => {
      if (v === undefined) return "";
      if (typeof v !== "string") throw new BadRequest(`"${field}" must be a string`);
      return v;
    };
    let runId: string;
    try {
      runId = await s.submit({ modules, priority, account: str(body.account, "account"), platform: str(body.platform, "platform") });
    } catch (err) {
      throw new BadRequest(printable(err instanceof Error ? err.message : String(err)));
    }
    return c.json({ run_id: runId, modules, priority });
  });
  app.get("/nodes", key, async (c) => c.json(await s.nodes()));
  app.get("/dlq", key, async (c) => {
    const topic = topicParam(c.req.query("topic"), "request");
    const count = countParam(c.req.query("count"), 10, 1000);
    return c.json((await s.listDeadLetters(topic, count)).map(deadLetterView));
  });
  app.post("/dlq/replay", key, async (c) => {
    const topic = topicParam(c.req.query("topic"), "request");
    const count = countParam(c.req.query("count"), Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
    return c.json({ topic, replayed: await s.replayDeadLetters(topic, count) });
  });
  const moduleParam = (v: string | undefined) => (v === undefined || v === "" ? undefined : v);
  app.post("/control/pause", key, async (c) => {
    await s.control.pause(moduleParam(c.req.query("module")));
    return c.json({ paused: await s.control.state() });
  });
  app.post("/control/resume", key, async (c) => {
    await s.control.resume(moduleParam(c.req.query("module")));
    return c.json({ paused: await s.control.state() });
  });
  app.notFound((c) => c.json({ error: `no route ${c.req.method} ${printable(c.req.path)}` }, 404));
  return app;
}

/** Serves the API on `[api] host:port`. */
export async function startApi(api: ApiConfig, sources: ApiSources): Promise<HttpServer> {
  const history = new FleetHistory();
  const app = createApi(api, sources, history);
  const server = await serveHttp((req) => app.fetch(req), api.host, api.port);
  // the chart's history is sampled from the start, not from when a browser first looks
  const reads = {
    stats: () => sources.queueStats(),
    nodes: cached(900, () => sources.nodes()),
    dead: () => Promise.resolve([]),
    runs: cached(900, () => (sources.runs ? sources.runs() : Promise.resolve([]))),
  };
  const timer = setInterval(() => void sampleFleet(sources, reads, history).catch(() => {}), 1000);
  (timer as { unref?: () => void }).unref?.();
  return {
    port: server.port,
    host: server.host,
    close: () => {
      clearInterval(timer);
      return server.close();
    },
  };
}
