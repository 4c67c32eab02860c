// tests/export.test.ts: `export --format jsonl|json|csv [--delete]` from the Redis sink (the
// PostgreSQL side is in postgres-sink.test.ts), and the Redis sink's bounds set from config.toml.

import { execFile, spawn } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { connect } from "node:net";
import { promisify } from "node:util";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse as parseCsv } from "csv-parse/sync";
import { afterEach, describe, expect, it } from "vitest";
import { connectionOptions } from "../src/redis/connection.ts";
import { redisSourceConfig } from "../src/queue/redis/source.ts";
import { createWorkerSink } from "../src/commands/start-worker.ts";
import { parseConfig } from "../src/config/index.ts";
import { countItems, exportItems } from "../src/storage/export-redis.ts";
import { itemSeenKey, itemStreamKey, RedisItemSink } from "../src/storage/redis-sink.ts";
import { deleteNamespace, freePort, rawClient, REDIS_HOST, REDIS_PORT, requireRedis, uniqueName } from "./helpers/redis.ts";
import { ROOT, runCli, writeConfig } from "./helpers/worker-process.ts";

const execFileP = promisify(execFile);

/** Resolves once something accepts TCP connections on 127.0.0.1:port. */
async function waitForPort(port: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const up = await new Promise<boolean>((resolve) => {
      const sock = connect(port, "127.0.0.1", () => {
        sock.destroy();
        resolve(true);
      });
      sock.on("error", () => resolve(false));
    });
    if (up) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nothing listens on ${port}`);
}

await requireRedis("export tests");

describe("export from the Redis sink", () => {
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
    config.channelConfig.redis.redisHost = REDIS_HOST; // the test run's Redis
    config.channelConfig.redis.redisPort = REDIS_PORT;
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
  it("a worker-side command reaches a TLS-only Redis with tls = true, and not without", async () => {
    const dir = await mkdtemp(join(tmpdir(), "mocra-tls-"));
    const ssl = (...args: string[]) => execFileP("openssl", args, { cwd: dir });
    // a throwaway CA and a server certificate for "localhost"
    await ssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=mocra test CA", "-keyout", "ca.key", "-out", "ca.crt");
    await ssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout", "server.key", "-out", "server.csr");
    await writeFile(join(dir, "ext.cnf"), "subjectAltName=DNS:localhost\n");
    await ssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "1", "-extfile", "ext.cnf", "-out", "server.crt");
    const port = await freePort();
    const server = spawn("redis-server", ["--port", "0", "--tls-port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
      "--tls-cert-file", join(dir, "server.crt"), "--tls-key-file", join(dir, "server.key"), "--tls-ca-cert-file", join(dir, "ca.crt"), "--tls-auth-clients", "no"], { stdio: "ignore" });
    try {
      const status = (tls: boolean) =>
        new Promise<{ code: number | null; out: string }>((resolve) => {
          void writeConfig(`name = "${uniqueName()}"\n[channel_config.redis]\nredis_host = "localhost"\nredis_port = ${port}\nconnect_timeout_ms = 3000\ntls = ${tls}\n`).then((cfg) => {
            const child = spawn(join(ROOT, "node_modules/.bin/tsx"), ["src/cli.ts", "status", "--config", cfg], {
              cwd: ROOT, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, NODE_EXTRA_CA_CERTS: join(dir, "ca.crt") },
            });
            let out = "";
            child.stdout.on("data", (d: Buffer) => (out += d.toString()));
            child.stderr.on("data", (d: Buffer) => (out += d.toString()));
            child.on("exit", (code) => resolve({ code, out }));
          });
        });
      await waitForPort(port);
      const ok = await status(true);
      expect(ok.out).toMatch(/finished: nothing waiting/); // status read the (empty) crawl over TLS
      expect(ok.code).toBe(0);
      const plain = await status(false);
      expect(plain.code).not.toBe(0);
      expect(plain.out).toMatch(new RegExp(`cannot connect to Redis at localhost:${port}`));
    } finally {
      server.kill("SIGKILL");
      await rm(dir, { recursive: true, force: true });
    }
  }, 120_000);

  it("tls = true gives ioredis a TLS socket with the host as server name", () => {
    const c = parseConfig('[channel_config.redis]\nredis_host = "redis.example"\ntls = true\n[cache.redis]\ntls = false\n', "c.toml");
    expect(connectionOptions(c.channelConfig.redis, "command", 1000, "x").tls).toEqual({ servername: "redis.example" });
    expect(connectionOptions(c.cache.redis!, "command", 1000, "x").tls).toBeUndefined();
    expect(redisSourceConfig({ name: "x", url: "rediss://h.example:6380/1" }).channelConfig.redis).toMatchObject({ redisHost: "h.example", redisPort: 6380, redisDb: 1, tls: true });
    expect(redisSourceConfig({ name: "x", url: "redis://h.example" }).channelConfig.redis.tls).toBe(false);
  });
});
