// tests/export.test.ts: `export --format jsonl|json|csv [--delete]` from the Redis sink (the
// PostgreSQL side is in postgres-sink.test.ts), and the Redis sink's bounds set from config.toml.

import { mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse as parseCsv } from "csv-parse/sync";
import { afterEach, describe, expect, it } from "vitest";
import { connectionOptions } from "../src/queue/redis/connection.ts";
import { createWorkerSink } from "../src/commands/start-worker.ts";
import { parseConfig } from "../src/config/index.ts";
import { countItems, exportItems, itemSeenKey, itemStreamKey, RedisItemSink } from "../src/storage/redis-sink.ts";
import { deleteNamespace, rawClient, requireRedis, uniqueName } from "./helpers/redis.ts";
import { runCli, writeConfig } from "./helpers/worker-process.ts";

const hasRedis = await requireRedis("export tests");

describe.skipIf(!hasRedis)("export from the Redis sink", () => {
  const cleanups: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  async function filled(name: string): Promise<void> {
    const sink = new RedisItemSink(rawClient(), name, {}, true);
    await sink.write({ module: "shop", fingerprint: "p1", items: [{ title: "a", price: 1.5, tags: ["x", "y"] }, { title: 'b "quoted", comma', price: 2 }] });
    await sink.write({ module: "shop", fingerprint: "p2", items: [{ title: "c\nline", stock: { n: 3 }, price: null }] });
    await sink.write({ module: "blog", fingerprint: "p3", items: [{ post: 1 }] });
    await sink.close();
  }

  it("json and csv: header = union of keys in first-seen order, nested values as JSON; parsed back", async () => {
    const name = uniqueName();
    cleanups.push(() => deleteNamespace(name));
    await filled(name);
    const redis = rawClient();
    cleanups.push(async () => redis.disconnect());
    const dir = await mkdtemp(join(tmpdir(), "mocra-export-"));
    expect(await exportItems(redis, name, "shop", join(dir, "s.json"), { format: "json", pageSize: 1 })).toBe(3);
    const json = JSON.parse(await readFile(join(dir, "s.json"), "utf8")) as unknown[];
    expect(json).toEqual([
      { title: "a", price: 1.5, tags: ["x", "y"] },
      { title: 'b "quoted", comma', price: 2 },
      { title: "c\nline", stock: { n: 3 }, price: null },
    ]);
    expect(await exportItems(redis, name, "shop", join(dir, "s.csv"), { format: "csv", pageSize: 2 })).toBe(3);
    const text = await readFile(join(dir, "s.csv"), "utf8");
    expect(text.split("\n")[0]).toBe("title,price,tags,stock");
    expect(parseCsv(text, { columns: true })).toEqual([
      { title: "a", price: "1.5", tags: '["x","y"]', stock: "" },
      { title: 'b "quoted", comma', price: "2", tags: "", stock: "" },
      { title: "c\nline", price: "", tags: "", stock: '{"n":3}' },
    ]);
    // nothing stored: an empty array / no CSV rows
    expect(await exportItems(redis, name, "none", join(dir, "none.json"), { format: "json" })).toBe(0);
    expect(JSON.parse(await readFile(join(dir, "none.json"), "utf8"))).toEqual([]);
  });

  it("the CLI: --format csv --delete writes <module>.csv and removes what it exported; the seen-set stays", async () => {
    const name = uniqueName();
    cleanups.push(() => deleteNamespace(name));
    await filled(name);
    const cfg = await writeConfig(`name = "${name}"\n[output]\nsink = "redis"\n`);
    const dir = await mkdtemp(join(tmpdir(), "mocra-export-"));
    const r = await runCli(["export", "--config", cfg, "--format", "csv", "--delete", "--out", dir]);
    expect(r.code).toBe(0);
    expect(r.out).toContain(`blog: 1 items → ${join(dir, "blog.csv")} (removed from the store)`);
    expect(r.out).toContain(`shop: 3 items → ${join(dir, "shop.csv")} (removed from the store)`);
    expect(parseCsv(await readFile(join(dir, "shop.csv"), "utf8"), { columns: true })).toHaveLength(3);
    const redis = rawClient();
    cleanups.push(async () => redis.disconnect());
    expect(await countItems(redis, name, "shop")).toBe(0);
    expect(await redis.scard(itemSeenKey(name, "shop"))).toBe(2);
    const bad = await runCli(["export", "--config", cfg, "--format", "xml"]);
    expect(bad.code).toBe(2);
    expect(bad.out).toContain('unknown --format "xml": formats are jsonl, json, csv');
  }, 60_000);

  it("[output] redis_max_len and redis_seen_ttl_secs bound the sink that start-worker builds", async () => {
    const name = uniqueName();
    cleanups.push(() => deleteNamespace(name));
    const config = parseConfig(`name = "${name}"\n[output]\nsink = "redis"\nredis_max_len = 10\nredis_seen_ttl_secs = 300\n`, "c.toml");
    const sink = await createWorkerSink(config);
    for (let i = 0; i < 50; i++) await sink.write({ module: "shop", fingerprint: `p${i}`, items: Array.from({ length: 20 }, (_, k) => ({ i, k })) });
    await sink.close();
    const redis = rawClient();
    cleanups.push(async () => redis.disconnect());
    const len = await redis.xlen(itemStreamKey(name, "shop"));
    expect(len).toBeLessThan(1000); // MAXLEN ~ 10: trimmed (approximately, by whole nodes)
    const ttl = await redis.ttl(itemSeenKey(name, "shop"));
    expect(ttl).toBeGreaterThan(250);
    expect(ttl).toBeLessThanOrEqual(300);
  });
});

describe("Redis TLS (mocra's tls)", () => {
  it("tls = true gives ioredis a TLS socket with the host as server name", () => {
    const c = parseConfig('[channel_config.redis]\nredis_host = "redis.example"\ntls = true\n[cache.redis]\ntls = false\n', "c.toml");
    expect(connectionOptions(c.channelConfig.redis, "command", 1000, "x").tls).toEqual({ servername: "redis.example" });
    expect(connectionOptions(c.cache.redis!, "command", 1000, "x").tls).toBeUndefined();
  });
});
