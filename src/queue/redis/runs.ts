// src/queue/redis/runs.ts: runs as the Redis queue counts them, fleet-wide.
//
// A run is every message that carries one run_id (a submitted task and all it leads to). Its
// hash <name>:run:<run_id> holds:
//   open          messages of the run not settled anywhere: queued, in flight or delayed.
//                 publish.lua adds what it appends; ack.lua and dead-letter.lua take off what
//                 they settle, in the same script as the XACK (retries and deferrals keep the
//                 message, so they change nothing). A worker killed mid-page leaves its entry
//                 pending: still open, re-delivered, counted off once when acked. 0 = finished.
//   finished_ms   set by the script that brought `open` to 0 (the hash then expires after
//                 RUN_TTL_SECS); a message published for the run later opens it again.
//   started_ms, modules   set by `submit`.
//   pages, items, bytes, http_errors, retries, deferred, status:<code>   what the workers saw,
//                 sent with their next ack batch (made before the acks they travel with, so
//                 complete once the run is finished; a worker killed loses only the counts of
//                 pages it had not acked, and those pages are fetched and counted again).
//   dead, dead:<reason>   dead letters (dead-letter.lua, same step as the move).

import type { Redis } from "ioredis";
import type { QueueKeys } from "./keys.ts";

/** Seconds a finished run's counts stay readable (then the hash expires). */
export const RUN_TTL_SECS = 7 * 24 * 3600;

/**
 * A dead-letter reason as counted per run: its kind, bounded (a hash field per distinct reason,
 * and an error text can be long and varied): URLs and measured figures (12.3 s) become
 * placeholders, so one cause is one count whatever page or timing it met.
 */
export function runReason(reason: string): string {
  const kind = reason
    .replace(/\b[a-z][a-z0-9+.-]*:\/\/[^\s"'<>)]+/gi, "<url>")
    .replace(/\d+\.\d+/g, "N")
    .replace(/\[one of \d+ /g, "[one of N ");
  return kind.length > 100 ? `${kind.slice(0, 97)}...` : kind;
}

export interface RunCounts {
  runId: string;
  /** messages not settled anywhere yet */
  open: number;
  startedMs?: number;
  finishedMs?: number;
  modules: string[];
  pages: number;
  items: number;
  bytes: number;
  httpErrors: number;
  retries: number;
  deferred: number;
  dead: number;
  statuses: Map<number, number>;
  deadByReason: Map<string, number>;
}

/** A run is finished when it was seen to reach 0 open and nothing opened it since. */
export function isFinished(r: RunCounts): boolean {
  return r.finishedMs !== undefined && r.open <= 0;
}

export function parseRun(runId: string, h: Record<string, string>): RunCounts {
  const n = (k: string) => Number(h[k] ?? 0) || 0;
  const r: RunCounts = {
    runId,
    open: n("open"),
    startedMs: h.started_ms ? Number(h.started_ms) : undefined,
    finishedMs: h.finished_ms ? Number(h.finished_ms) : undefined,
    modules: h.modules ? h.modules.split(",") : [],
    pages: n("pages"),
    items: n("items"),
    bytes: n("bytes"),
    httpErrors: n("http_errors"),
    retries: n("retries"),
    deferred: n("deferred"),
    dead: n("dead"),
    statuses: new Map(),
    deadByReason: new Map(),
  };
  for (const [k, v] of Object.entries(h)) {
    if (k.startsWith("status:")) r.statuses.set(Number(k.slice(7)), Number(v));
    else if (k.startsWith("dead:")) r.deadByReason.set(k.slice(5), Number(v));
  }
  return r;
}

/** One run's counts, or undefined when Redis knows nothing of it (never submitted, or expired). */
export async function readRun(conn: Redis, keys: QueueKeys, runId: string): Promise<RunCounts | undefined> {
  const h = await conn.hgetall(keys.run(runId));
  if (Object.keys(h).length === 0) return undefined;
  return parseRun(runId, h);
}

/** The runs known, newest first (at most `limit`); forgets index entries whose hash expired. */
export async function listRuns(conn: Redis, keys: QueueKeys, limit = 20): Promise<RunCounts[]> {
  await conn.zremrangebyscore(keys.runs(), "-inf", Date.now() - RUN_TTL_SECS * 1000);
  const ids = await conn.zrevrange(keys.runs(), 0, limit - 1);
  if (ids.length === 0) return [];
  const pipe = conn.pipeline();
  for (const id of ids) pipe.hgetall(keys.run(id));
  const replies = (await pipe.exec()) ?? [];
  const out: RunCounts[] = [];
  ids.forEach((id, i) => {
    const [err, h] = replies[i] ?? [];
    if (err || !h || Object.keys(h as object).length === 0) return;
    out.push(parseRun(id, h as Record<string, string>));
  });
  return out;
}

/** Records a submitted run (before its task is published: the hash exists when workers count). */
export async function recordSubmittedRun(conn: Redis, keys: QueueKeys, runId: string, modules: readonly string[]): Promise<void> {
  const now = Date.now();
  await conn.pipeline().hset(keys.run(runId), "started_ms", now, "modules", modules.join(",")).zadd(keys.runs(), now, runId).exec();
}

/**
 * Counts a worker keeps per run between ack flushes ("<run key>\t<field>" → increment); the
 * acker sends them with its next batch (ack.lua).
 */
export class RunTallies {
  private counts = new Map<string, number>();

  add(runKey: string, field: string, n = 1): void {
    const k = `${runKey}\t${field}`;
    this.counts.set(k, (this.counts.get(k) ?? 0) + n);
  }

  get size(): number {
    return this.counts.size;
  }

  /** Takes every count kept so far: [run key, field, increment]. */
  take(): Array<[string, string, number]> {
    const out: Array<[string, string, number]> = [];
    for (const [k, n] of this.counts) {
      const tab = k.indexOf("\t");
      out.push([k.slice(0, tab), k.slice(tab + 1), n]);
    }
    this.counts = new Map();
    return out;
  }

  /** Puts counts back (their flush failed on the connection). */
  restore(list: Array<[string, string, number]>): void {
    for (const [key, field, n] of list) this.add(key, field, n);
  }
}

/** The runs of one crawl in Redis: read them, and record a submitted one. */
export class RunBook {
  constructor(
    private readonly conn: Redis,
    private readonly keys: QueueKeys,
  ) {}

  list(limit = 20): Promise<RunCounts[]> {
    return listRuns(this.conn, this.keys, limit);
  }

  read(runId: string): Promise<RunCounts | undefined> {
    return readRun(this.conn, this.keys, runId);
  }

  record(runId: string, modules: readonly string[]): Promise<void> {
    return recordSubmittedRun(this.conn, this.keys, runId, modules);
  }
}

/** A run as the API and `status --json` show it. */
export function runView(r: RunCounts): Record<string, unknown> & { run_id: string; state: string; pages: number; items: number; open: number } {
  const finished = isFinished(r);
  return {
    run_id: r.runId,
    state: finished ? "finished" : "running",
    modules: r.modules,
    open: Math.max(0, r.open),
    pages: r.pages,
    items: r.items,
    bytes: r.bytes,
    http_errors: r.httpErrors,
    retries: r.retries,
    deferred: r.deferred,
    dead_letters: r.dead,
    statuses: Object.fromEntries([...r.statuses].sort((a, b) => a[0] - b[0])),
    dead_letters_by_reason: Object.fromEntries(r.deadByReason),
    started_at: r.startedMs === undefined ? null : new Date(r.startedMs).toISOString(),
    finished_at: finished ? new Date(r.finishedMs!).toISOString() : null,
    expires_at: finished ? new Date(r.finishedMs! + RUN_TTL_SECS * 1000).toISOString() : null,
  };
}
