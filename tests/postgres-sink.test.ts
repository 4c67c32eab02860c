// tests/postgres-sink.test.ts: the PostgreSQL items store against a real server: the machine's
// (127.0.0.1:5432, database test, one schema per test) for exactly-once writes, export formats
// and start-worker processes with a kill -9; a private server (own temp dir and port) for a
// restart in the middle of writing.

import { mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse as parseCsv } from "csv-parse/sync";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { loadConfig, parseConfig } from "../src/config/index.ts";
import { readStatus } from "../src/commands/status.ts";
import { type ShopServer, startShop } from "../examples/demo-shop/shop.ts";
import { TOPICS } from "../src/model/index.ts";
import { exportPostgresItems } from "../src/storage/export-postgres.ts";
import { PostgresItemSink, postgresEndpoint } from "../src/storage/postgres-sink.ts";
import {
  dropSchema,
  PG_URL,
  pgClient,
  type PrivatePostgres,
  privatePostgresAvailable,
  requirePostgres,
  startPrivatePostgres,
  uniqueSchema,
} from "./helpers/postgres.ts";
import { deleteNamespace, freePort, requireRedis, uniqueName } from "./helpers/redis.ts";
import { runCli, startWorker, waitFor, type WorkerProcess, writeConfig } from "./helpers/worker-process.ts";

let hasPg = false;
beforeAll(async () => {
  hasPg = await requirePostgres("postgres-sink");
  await requireRedis("postgres-sink");
});

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!().catch((e: unknown) => console.error("cleanup:", e));
});

function sinkConfig(schema: string, url = PG_URL, extra = ""): string {
  return `[output]\nsink = "postgres"\npostgres_batch_rows = 7\npostgres_outage_secs = 120\n${extra}[db]\nurl = "${url}"\ndatabase_schema = "${schema}"\npool_size = 2\n`;
}

async function connectSink(schema: string, url = PG_URL, lines: string[] = []): Promise<PostgresItemSink> {
  const sink = await PostgresItemSink.connect(parseConfig(sinkConfig(schema, url), "c.toml"), { onStatus: (l) => lines.push(l) });
  cleanups.push(() => sink.close());
  return sink;
}

const page = (i: number, n = 3) => ({
  module: "shop",
  fingerprint: `fp${i}`,
  runId: "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
  url: `http://shop/${i}`,
  items: Array.from({ length: n }, (_, k) => ({ title: `t${i}.${k}`, price: i + k / 10, tags: ["a", k], nested: { k } })),
});

describe("PostgresItemSink", () => {
  it("stores rows with the issue's columns; a redelivered page adds no row; two sinks race on the same pages", async () => {
    if (!hasPg) return;
    const schema = uniqueSchema();
    cleanups.push(() => dropSchema(schema));
    const a = await connectSink(schema);
    const b = await connectSink(schema);
    // both sinks store pages 0..59 at once (as two workers with redelivered messages would)
    const results = await Promise.all(Array.from({ length: 60 }, (_, i) => [a.write(page(i)), b.write(page(i))]).flat());
    // every page was stored by exactly one of the two
    for (let i = 0; i < 60; i++) expect([results[2 * i], results[2 * i + 1]].filter(Boolean)).toHaveLength(1);
    expect(await a.write(page(3))).toBe(false);
    // the same page twice in one flush of one sink: stored once, the copy answers "stored before"
    expect(await Promise.all([a.write(page(100)), a.write(page(101)), a.write(page(101))])).toEqual([true, true, false]);
    const sql = pgClient();
    cleanups.push(() => sql.end({ timeout: 1 }));
    const rows = await sql.unsafe(`SELECT fingerprint, item_index, module, run_id, url, item, stored_at FROM "${schema}".items_shop ORDER BY id`);
    expect(rows).toHaveLength(186);
    expect(new Set(rows.map((r) => `${r.fingerprint}/${r.item_index}`)).size).toBe(186);
    const r0 = rows.find((r) => r.fingerprint === "fp5" && r.item_index === 2)!;
    expect(r0).toMatchObject({ module: "shop", run_id: "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", url: "http://shop/5", item: { title: "t5.2", price: 5.2, tags: ["a", 2], nested: { k: 2 } } });
    expect(r0.stored_at).toBeInstanceOf(Date);
    expect(a.describe()).toBe(`PostgreSQL at 127.0.0.1:5432 table ${schema}.items_<module>`);
  });

  it("a value PostgreSQL refuses fails only its own page, not the others batched with it", async () => {
    if (!hasPg) return;
    const schema = uniqueSchema();
    cleanups.push(() => dropSchema(schema));
    const sink = await connectSink(schema);
    const results = await Promise.allSettled([sink.write(page(1)), sink.write({ ...page(2), items: [{ title: "nul \u0000 byte" }] }), sink.write(page(3))]);
    expect(results.map((r) => r.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
    expect(String((results[1] as PromiseRejectedResult).reason)).toMatch(/PostgreSQL at 127\.0\.0\.1:5432: .*(unicode|\\u0000)/i);
    const sql = pgClient();
    cleanups.push(() => sql.end({ timeout: 1 }));
    const [{ n }] = await sql.unsafe(`SELECT count(*)::int AS n FROM "${schema}".items_shop`);
    expect(n).toBe(6);
  });

  it("a connection error names host:port and the reason", async () => {
    const port = await freePort(); // nothing listens there
    const url = `postgres://postgres@127.0.0.1:${port}/test`;
    await expect(PostgresItemSink.connect(parseConfig(sinkConfig("public", url), "c.toml"))).rejects.toThrow(
      new RegExp(`cannot connect to PostgreSQL at 127\\.0\\.0\\.1:${port} \\(database "test"\\): .*ECONNREFUSED`),
    );
    // the CLI prints it as one line, no stack trace, exit 1
    const cfg = await writeConfig(sinkConfig("public", url));
    const worker = await runCli(["export", "--config", cfg]);
    expect(worker.code).toBe(1);
    expect(worker.out.trim()).toMatch(new RegExp(`^export: cannot connect to PostgreSQL at 127\\.0\\.0\\.1:${port} \\(database "test"\\): connect ECONNREFUSED 127\\.0\\.0\\.1:${port}$`));
    expect(postgresEndpoint("postgresql://u:p@db.example:6543/crawl")).toEqual({ host: "db.example", port: 6543, database: "crawl" });
  });

  it("export: jsonl, json and csv (header = union of keys, nested as JSON; parsed back), --delete", async () => {
    if (!hasPg) return;
    const schema = uniqueSchema();
    cleanups.push(() => dropSchema(schema));
    const sink = await connectSink(schema);
    await sink.write(page(1, 2));
    await sink.write({ ...page(2, 1), items: [{ title: "x,\"y\"\nz", extra: null, only_here: true }] });
    const sql = pgClient();
    cleanups.push(() => sql.end({ timeout: 1 }));
    const dir = await mkdtemp(join(tmpdir(), "mocra-export-"));
    expect(await exportPostgresItems(sql, schema, "shop", join(dir, "a.jsonl"))).toBe(3);
    const lines = (await readFile(join(dir, "a.jsonl"), "utf8")).trim().split("\n").map((l) => JSON.parse(l) as unknown);
    expect(lines[0]).toEqual(page(1, 2).items[0]);
    expect(await exportPostgresItems(sql, schema, "shop", join(dir, "a.json"), { format: "json", pageSize: 2 })).toBe(3);
    expect(JSON.parse(await readFile(join(dir, "a.json"), "utf8"))).toEqual(lines);
    expect(await exportPostgresItems(sql, schema, "shop", join(dir, "a.csv"), { format: "csv", pageSize: 1 })).toBe(3);
    const csv = parseCsv(await readFile(join(dir, "a.csv"), "utf8"), { columns: true }) as Array<Record<string, string>>;
    // jsonb keeps an object's keys shortest first (then bytewise), so that is the first-seen order here
    expect(Object.keys(csv[0])).toEqual(["tags", "price", "title", "nested", "extra", "only_here"]);
    expect(csv).toEqual([
      { title: "t1.0", price: "1", tags: '["a",0]', nested: '{"k":0}', extra: "", only_here: "" },
      { title: "t1.1", price: "1.1", tags: '["a",1]', nested: '{"k":1}', extra: "", only_here: "" },
      { title: 'x,"y"\nz', price: "", tags: "", nested: "", extra: "", only_here: "true" },
    ]);
    expect(await exportPostgresItems(sql, schema, "shop", join(dir, "b.jsonl"), { removeExported: true })).toBe(3);
    expect(await exportPostgresItems(sql, schema, "shop", join(dir, "c.jsonl"))).toBe(0);
    expect(await exportPostgresItems(sql, schema, "nothing", join(dir, "d.csv"), { format: "csv" })).toBe(0);
  });

  it("a PostgreSQL restarted mid-write loses nothing: writes wait (nothing acked), then resume", async () => {
    if (!(await privatePostgresAvailable())) {
      if (process.env.CI === "true") throw new Error("initdb not found (CI=true: PostgreSQL 15 is required)");
      return;
    }
    const pg: PrivatePostgres = await startPrivatePostgres();
    cleanups.push(() => pg.destroy());
    const lines: string[] = [];
    const sink = await connectSink("crawl", pg.url, lines);
    const settled: Array<{ i: number; at: number; ok: boolean }> = [];
    const writes: Array<Promise<unknown>> = [];
    let stopAt = 0;
    let startAt = 0;
    const writer = (async () => {
      for (let i = 0; i < 400; i++) {
        writes.push(sink.write(page(i, 2)).then((ok) => settled.push({ i, at: Date.now(), ok: ok || true }), () => settled.push({ i, at: Date.now(), ok: false })));
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    await waitFor("some rows", async () => settled.length > 50, 30_000, 20);
    stopAt = Date.now();
    await pg.stop();
    await new Promise((r) => setTimeout(r, 1500));
    startAt = Date.now();
    await pg.start();
    await writer;
    await Promise.all(writes);
    expect(settled.every((s) => s.ok)).toBe(true);
    // nothing written during the outage resolved before the database was back
    const during = settled.filter((s) => s.at > stopAt + 200 && s.at < startAt);
    expect(during).toHaveLength(0);
    expect(lines.some((l) => /^PostgreSQL at 127\.0\.0\.1:\d+ unavailable \(.+\): holding acks until it is back/.test(l))).toBe(true);
    expect(lines.some((l) => /is back after [\d.]+ s/.test(l))).toBe(true);
    const sql = pgClient(pg.url);
    cleanups.push(() => sql.end({ timeout: 1 }));
    const [{ n, d }] = await sql.unsafe(`SELECT count(*)::int AS n, count(DISTINCT (fingerprint, item_index))::int AS d FROM crawl.items_shop`);
    expect([n, d]).toEqual([800, 800]);
  }, 180_000);
});

describe("start-worker with output.sink = postgres", () => {
  let shop: ShopServer | undefined;
  let workers: WorkerProcess[] = [];
  afterEach(async () => {
    for (const w of workers) if (w.child.exitCode === null) w.child.kill("SIGKILL");
    workers = [];
    await shop?.close();
    shop = undefined;
  });

  it("two workers and a kill -9 of one: every item exactly once in the table", async () => {
    if (!hasPg) return;
    const name = uniqueName();
    const schema = uniqueSchema();
    cleanups.push(async () => void (await deleteNamespace(name)));
    cleanups.push(() => dropSchema(schema));
    shop = await startShop({ items: 400, latencyMs: 20 });
    const cfg = await writeConfig(`name = "${name}"
[crawler]
task_concurrency = 8
shutdown_timeout_secs = 10
progress_interval_secs = 1
[channel_config.redis]
claim_min_idle = 1500
claim_interval = 500
[modules.demo_shop]
start_url = "${shop.url}/list/0"
${sinkConfig(schema)}`);
    workers = [await startWorker(cfg), await startWorker(cfg)];
    expect((await runCli(["submit", "demo_shop", "--config", cfg])).code).toBe(0);
    const sql = pgClient();
    cleanups.push(() => sql.end({ timeout: 1 }));
    const count = async (): Promise<number> => {
      try {
        return (await sql.unsafe(`SELECT count(*)::int AS n FROM "${schema}".items_demo_shop`))[0].n as number;
      } catch {
        return 0; // table not created yet
      }
    };
    await waitFor("a quarter of the items", async () => (await count()) > 100, 60_000, 50);
    workers[0].child.kill("SIGKILL");
    await waitFor("400 items", async () => (await count()) >= 400, 90_000);
    const idle = async () => {
      const s = await readStatus(await loadConfig(cfg));
      return TOPICS.every((t) => s.topics[t].delayed === 0 && Object.values(s.topics[t].priorities).every((p) => p.waiting === 0 && p.pending === 0));
    };
    await waitFor("an idle queue", idle, 30_000);
    const rows = await sql.unsafe(`SELECT count(*)::int AS n, count(DISTINCT item->>'url')::int AS urls, count(DISTINCT fingerprint)::int AS pages FROM "${schema}".items_demo_shop`);
    expect(rows[0]).toEqual({ n: 400, urls: 400, pages: 400 });
    workers[1].child.kill("SIGTERM");
    expect(await workers[1].exited).toBe(0);
    expect(workers[1].output()).toMatch(new RegExp(`items: PostgreSQL at 127\\.0\\.0\\.1:5432 table ${schema}\\.items_<module>`));
    // and the CLI exports it as CSV
    const dir = await mkdtemp(join(tmpdir(), "mocra-export-"));
    const exported = await runCli(["export", "--config", cfg, "--format", "csv", "--out", dir]);
    expect(exported.code).toBe(0);
    expect(exported.out).toContain(`demo_shop: 400 items → ${join(dir, "demo_shop.csv")}`);
    const csv = parseCsv(await readFile(join(dir, "demo_shop.csv"), "utf8"), { columns: true }) as Array<Record<string, string>>;
    expect(csv).toHaveLength(400);
    expect(new Set(csv.map((r) => r.url)).size).toBe(400);
  }, 180_000);
});
