// tests/benchmark_frontier_store.ts: the embedded store for run-standalone's frontier, measured
// on the runtime it runs on (run it with Node and with Deno):
//   npx tsx tests/benchmark_frontier_store.ts
//   ./node_modules/deno/deno run -A tests/benchmark_frontier_store.ts
// Workload: N demo-shop-like Requests enqueued in batches of 64 (one durable commit per batch, as
// the crawl's group commit does), then read back in order and acked in batches of 64.
// Candidates: the segment log (src/state/, what run-standalone uses) and SQLite through
// node:sqlite (Deno 2; Node >= 22.5 only). better-sqlite3 (not a dependency: a native addon) is
// tried if it resolves, or from --better-sqlite3=PATH (a separately installed copy).
import { mkdtempSync, rmSync, statSync, readdirSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jsonCodec } from "../src/codec/index.ts";
import { request } from "../src/model/index.ts";
import { MemoryQueue } from "../src/queue/memory-queue.ts";
import { runtime } from "../src/runtime/index.ts";
import { FrontierJournal } from "../src/state/frontier-journal.ts";

const N = Number(process.argv.find((a) => a.startsWith("--n="))?.slice(4) ?? 50_000);
const BATCH = 64;
const messages = Array.from({ length: N }, (_, i) =>
  request({ url: `http://127.0.0.1:8787/item/${i}`, module: "demo_shop", priority: "normal" }),
);

interface SqlDb {
  exec(sql: string): void;
  prepare(sql: string): { run(...a: unknown[]): unknown; all(...a: unknown[]): unknown[] };
  close(): void;
}

function dirBytes(dir: string): number {
  return readdirSync(dir).reduce((n, f) => n + statSync(join(dir, f)).size, 0);
}

async function segmentLog(): Promise<[number, number, number]> {
  const dir = mkdtempSync(join(tmpdir(), "mocra-store-"));
  const q = new MemoryQueue({ journal: FrontierJournal.create(dir, { segmentBytes: 16 << 20, fsync: false }), hotEntries: 512 });
  const t0 = performance.now();
  for (let i = 0; i < N; i += BATCH) await q.publish("request", messages.slice(i, i + BATCH).map((m, j) => ({ message: m, dedupKey: String(i + j) })));
  const t1 = performance.now();
  for (;;) {
    const got = await q.read("request", BATCH, 0);
    if (got.length === 0) break;
    await Promise.all(got.map((d) => q.ack(d)));
  }
  const t2 = performance.now();
  const bytes = dirBytes(dir);
  rmSync(dir, { recursive: true, force: true });
  return [((t1 - t0) * 1000) / N, ((t2 - t1) * 1000) / N, bytes];
}

function sqlite(open: (file: string) => SqlDb): [number, number, number] {
  const dir = mkdtempSync(join(tmpdir(), "mocra-store-"));
  const db = open(join(dir, "frontier.db"));
  db.exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;");
  db.exec("CREATE TABLE q (seq INTEGER PRIMARY KEY, topic TEXT, priority INTEGER, payload BLOB); CREATE TABLE seen (k TEXT PRIMARY KEY)");
  const ins = db.prepare("INSERT INTO q (seq, topic, priority, payload) VALUES (?, 'request', 1, ?)");
  const seen = db.prepare("INSERT OR IGNORE INTO seen (k) VALUES (?)");
  const sel = db.prepare("SELECT seq, payload FROM q WHERE seq > ? ORDER BY seq LIMIT ?");
  const del = db.prepare("DELETE FROM q WHERE seq = ?");
  const t0 = performance.now();
  for (let i = 0; i < N; i += BATCH) {
    db.exec("BEGIN");
    for (let j = i; j < Math.min(N, i + BATCH); j++) {
      seen.run(String(j));
      ins.run(j + 1, jsonCodec.encode("request", messages[j]));
    }
    db.exec("COMMIT");
  }
  const t1 = performance.now();
  let after = 0;
  for (;;) {
    const rows = sel.all(after, BATCH) as { seq: number; payload: Uint8Array }[];
    if (rows.length === 0) break;
    for (const r of rows) jsonCodec.decode("request", r.payload);
    db.exec("BEGIN");
    for (const r of rows) del.run(r.seq);
    db.exec("COMMIT");
    after = rows[rows.length - 1].seq;
  }
  const t2 = performance.now();
  db.close();
  const bytes = dirBytes(dir);
  rmSync(dir, { recursive: true, force: true });
  return [((t1 - t0) * 1000) / N, ((t2 - t1) * 1000) / N, bytes];
}

const rows: [string, number, number, number][] = [];
rows.push(["segment log (chosen)", ...(await segmentLog())]);
try {
  const { DatabaseSync } = (await import("node:sqlite")) as { DatabaseSync: new (f: string) => SqlDb };
  rows.push(["node:sqlite", ...sqlite((f) => new DatabaseSync(f))]);
} catch (err) {
  rows.push([`node:sqlite: not available (${String(err).split("\n")[0].slice(0, 80)})`, NaN, NaN, NaN]);
}
try {
  const path = process.argv.find((a) => a.startsWith("--better-sqlite3="))?.slice(17) ?? "better-sqlite3";
  const Better = createRequire(import.meta.url)(path) as new (f: string) => SqlDb;
  rows.push(["better-sqlite3", ...sqlite((f) => new Better(f))]);
} catch (err) {
  rows.push([`better-sqlite3: not available (${String(err).split("\n")[0].slice(0, 80)})`, NaN, NaN, NaN]);
}
console.log(`benchmark_frontier_store on ${runtime} ${runtime === "deno" ? (globalThis as { Deno?: { version: { deno: string } } }).Deno?.version.deno : process.version}: ${N} requests, batches of ${BATCH}`);
console.log("| store | enqueue µs/msg | read+ack µs/msg | bytes on disk after |");
console.log("| --- | ---: | ---: | ---: |");
for (const [name, a, b, c] of rows) console.log(`| ${name} | ${Number.isNaN(a) ? "-" : a.toFixed(1)} | ${Number.isNaN(b) ? "-" : b.toFixed(1)} | ${Number.isNaN(c) ? "-" : c} |`);
