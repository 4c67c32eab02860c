// Output faults as a user meets them, with real run-standalone processes against a local site:
// an item no sink can store (BigInt, a cycle, over output.max_item_bytes) is a dead letter with
// its reason in every sink, never a silent loss; a full disk (a 2 MB tmpfs) stops the crawl at
// once with one line naming the file, and --resume after freeing space ends with every item
// exactly once and no torn line. Store middleware, Redis and PostgreSQL sinks are checked with
// the sink stage itself against the real services.
import { execFileSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { lastValueFrom, of, toArray } from "rxjs";
import { afterEach, describe, expect, it } from "vitest";
import { Message, sink } from "../operators/index.ts";
import type { Parsed } from "../operators/parse.ts";
import { StoreChainSink } from "../src/middleware/store-sink.ts";
import { MiddlewareChains } from "../src/middleware/chains.ts";
import { ModuleRegistry } from "../src/modules/registry.ts";
import { MemoryQueue } from "../src/queue/memory-queue.ts";
import { UnstorableItemError } from "../src/storage/item-text.ts";
import { JsonlSink } from "../src/storage/jsonl-sink.ts";
import { RedisItemSink, itemStreamKey } from "../src/storage/redis-sink.ts";
import { PostgresItemSink, postgresEndpoint } from "../src/storage/postgres-sink.ts";
import type { ItemBatch, ItemSink } from "../src/storage/sink.ts";

import { html, startServer, type TestServer } from "./helpers/http-server.ts";
import { type CliRun, runCliProcess } from "./helpers/standalone-process.ts";
import { PG_URL, pgClient } from "./helpers/postgres.ts";
import { rawClient, uniqueName, deleteNamespace } from "./helpers/redis.ts";

let server: TestServer | undefined;
let dir: string | undefined;
const mounts: string[] = [];

afterEach(async () => {
  await server?.close();
  for (const m of mounts.splice(0)) execFileSync("umount", [m]);
  if (dir) await rm(dir, { recursive: true, force: true });
  server = dir = undefined;
});

async function site(pages: number): Promise<TestServer> {
  return startServer((req, res) => {
    if (req.url === "/") html(res, Array.from({ length: pages }, (_, i) => `<a href="/p/${i}">${i}</a>`).join(""));
    else if (req.url?.startsWith("/p/")) html(res, "<h1>item</h1>");
    else html(res, "no", 404);
  });
}

function runCli(config: string, extra: string[] = []): CliRun {
  return runCliProcess(["run-standalone", "--config", config, "--module", "faulty_items", ...extra]);
}

async function writeConfig(output: string, state: string, settings: string, extra = ""): Promise<string> {
  const file = join(dir!, "config.toml");
  await writeFile(
    file,
    `name = "faults_${process.pid}"\n[crawler]\nmodule_paths = ["tests/fixtures/faults"]\ntask_concurrency = 8\nprogress_interval_secs = 1\n` +
      `[output]\npath = ${JSON.stringify(output)}\nmax_item_bytes = 10000\n${extra}\n[state]\ndir = ${JSON.stringify(state)}\n` +
      `[modules.faulty_items]\nurl = ${JSON.stringify(server!.url)}\n${settings}\n`,
  );
  return file;
}

const UNSTORABLE = [/BigInt/, /circular/, /over output\.max_item_bytes = 10000/];

describe("an item that cannot be stored is a dead letter, never a silent loss", () => {
  it("JSONL sink: the three bad pages are dead letters with their reasons, the 7 good pages' items are stored", async () => {
    server = await site(10);
    dir = await mkdtemp(join(tmpdir(), "mocra-faults-"));
    const out = join(dir, "out");
    const run = runCli(await writeConfig(out, join(dir, "state"), "bad = true"));
    const code = await run.exited;
    expect(code, run.output()).toBe(0);
    const lines = (await readFile(join(out, "faulty_items.jsonl"), "utf8")).split("\n").filter(Boolean);
    expect(lines.map((l) => (JSON.parse(l) as { page: number }).page).sort()).toEqual([0, 4, 5, 6, 7, 8, 9]);
    const dead = (await readFile(join(out, "dead_letters.jsonl"), "utf8")).split("\n").filter(Boolean).map((l) => JSON.parse(l) as { reason: string; url: string });
    expect(dead.map((d) => new URL(d.url).pathname).sort()).toEqual(["/p/1", "/p/2", "/p/3"]);
    for (const re of UNSTORABLE) expect(dead.some((d) => re.test(d.reason)), `${re} in ${JSON.stringify(dead)}`).toBe(true);
    expect(run.output()).toMatch(/dead letters: response 3/);
    // not retried: each bad page was fetched once
    for (const p of [1, 2, 3]) expect(server.hits.get(`/p/${p}`)).toBe(1);
  }, 90_000);

  it("stdout sink: the same", async () => {
    server = await site(10);
    dir = await mkdtemp(join(tmpdir(), "mocra-faults-"));
    const out = join(dir, "out");
    const run = runCli(await writeConfig(out, join(dir, "state"), "bad = true", 'sink = "stdout"'));
    expect(await run.exited, run.output()).toBe(0);
    const items = run.stdout().split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as { item: { page: number } });
    expect(items.map((i) => i.item.page).sort()).toEqual([0, 4, 5, 6, 7, 8, 9]);
    const dead = (await readFile(join(out, "dead_letters.jsonl"), "utf8")).split("\n").filter(Boolean);
    expect(dead).toHaveLength(3);
  }, 90_000);

  const bigint: ItemBatch = { module: "faulty", fingerprint: "fp-bad", items: [{ ok: 1 }, { id: 10n }] };
  const good: ItemBatch = { module: "faulty", fingerprint: "fp-bad", items: [{ ok: 1 }] };

  /** The sink refuses the bad batch before booking it: the same page with good items is stored after. */
  async function refusesThenStores(s: ItemSink): Promise<void> {
    await expect(s.write(bigint)).rejects.toBeInstanceOf(UnstorableItemError);
    const cyclic: Record<string, unknown> = {};
    cyclic.me = cyclic;
    await expect(s.write({ ...good, items: [cyclic] })).rejects.toThrow(/circular/);
    await expect(s.write({ ...good, items: [{ blob: "z".repeat(9_000_000) }] })).rejects.toThrow(/max_item_bytes/);
    expect(await s.write(good)).toBe(true);
  }

  it("Redis sink: refused before anything is stored", async () => {
    const redis = rawClient();
    const name = uniqueName();
    const s = new RedisItemSink(redis, name);
    try {
      await refusesThenStores(s);
      expect(await redis.xlen(itemStreamKey(name, "faulty"))).toBe(1);
    } finally {
      await s.close();
      await deleteNamespace(name);
      redis.disconnect();
    }
  });

  it("PostgreSQL sink: refused before anything is stored; a value PostgreSQL refuses is unstorable too", async () => {
    const schema = `faults_${process.pid}_${Date.now()}`;
    const sql = pgClient();
    const s = new PostgresItemSink(sql, schema, postgresEndpoint(PG_URL));
    try {
      await refusesThenStores(s);
      await expect(s.write({ module: "faulty", fingerprint: "fp-nul", items: [{ text: "a\u0000b" }] })).rejects.toBeInstanceOf(UnstorableItemError);
    } finally {
      await s.close();
      await sql.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await sql.end({ timeout: 1 });
    }
  });

  it("store middleware: an unstorable item reaches no store and dead-letters its page (with the Response), not retried", async () => {
    dir = await mkdtemp(join(tmpdir(), "mocra-faults-"));
    const received: ItemBatch[] = [];
    const store: ItemSink = { write: async (b) => (received.push(b), true), describe: () => "memory", close: async () => {} };
    const chains = new MiddlewareChains([{ kind: "store", name: "memory", sink: store }], new ModuleRegistry());
    const chainSink = new StoreChainSink(new JsonlSink(join(dir, "out")), chains);
    const queue = new MemoryQueue();
    const [delivery] = await queue.publish("request", [{ message: { url: "http://127.0.0.1/p/1" } as never }]).then(() => queue.read("request", 1, 0));
    const message = new Message(delivery, queue);
    const parsed = { module: "faulty", fingerprint: "fp", url: "http://127.0.0.1/p/1", response: { runId: "r" }, output: { items: [{ id: 1n }], requests: [], parserTasks: [] } } as unknown as Parsed;
    const [job] = await lastValueFrom(of({ ok: true as const, message, value: parsed }).pipe(sink(chainSink, { maxItemBytes: 1000 }), toArray()));
    expect(job.ok).toBe(false);
    if (job.ok) return;
    expect(job.failure).toMatchObject({ retryable: false, deadLetter: { topic: "response" } });
    expect(job.failure.reason).toMatch(/unstorable item: .*BigInt/);
    expect(received).toHaveLength(0);
    await chainSink.close();
  });
});

describe("a full disk stops the crawl cleanly", () => {
  function tmpfs(path: string, size: string): boolean {
    mkdirSync(path, { recursive: true });
    try {
      execFileSync("mount", ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", path], { stdio: "ignore" });
    } catch {
      return false;
    }
    mounts.push(path);
    return true;
  }

  // the frontier of 300 pages takes ~40 KB (compact records, seen.table, marks.log): its disk is made
  // smaller than that, and larger than a new state folder (tmpfs pages of 4 KB: state.json and its
  // .tmp, segments.json, the first segment, seen.table: 16k fails before the crawl starts)
  for (const [where, size] of [["output", "2m"], ["state", "24k"]] as const) {
    it(`${where} on a ${size} tmpfs: one line naming the file and ENOSPC, exit 1 at once; --resume after freeing space: every item once, no torn line`, async (ctx) => {
      server = await site(300);
      dir = await mkdtemp(join(tmpdir(), "mocra-faults-"));
      const out = join(dir, "out");
      const state = join(dir, "state");
      const small = where === "output" ? out : state;
      if (!tmpfs(small, size)) return ctx.skip("cannot mount a tmpfs here (not root, or no mount permission)");
      // 300 pages x 10 items x ~1 KB = ~3 MB of items: more than the disk holds
      const config = await writeConfig(out, state, "per_page = 10\nitem_bytes = 1000");
      const run = runCli(config);
      const code = await run.exited;
      expect(code, run.output()).toBe(1);
      const text = run.output();
      const faultLines = text.split("\n").filter((l) => /ENOSPC|no space left/i.test(l));
      expect(faultLines, text).toHaveLength(1);
      expect(faultLines[0]).toMatch(new RegExp(`^fatal: cannot write ${small.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}/\\S+: ENOSPC`));
      // soon after the first failure: far fewer than the 300 pages were fetched after it
      expect(text).not.toMatch(/could not settle/);
      // free space and resume
      execFileSync("mount", ["-o", "remount,size=64m", small]);
      const resumed = runCli(config, ["--resume"]);
      expect(await resumed.exited, resumed.output()).toBe(0);
      const lines = (await readFile(join(out, "faulty_items.jsonl"), "utf8")).split("\n");
      expect(lines.pop()).toBe("");
      const keys = lines.map((l) => {
        const item = JSON.parse(l) as { page: number; i: number };
        return `${item.page}/${item.i}`;
      });
      expect(new Set(keys).size, "distinct items").toBe(3000);
      expect(keys.length, "lines").toBe(3000);
    }, 180_000);
  }

  it("a state disk too small for a new state folder: one line naming the file, exit 1, no stack trace", async (ctx) => {
    server = await site(3);
    dir = await mkdtemp(join(tmpdir(), "mocra-faults-"));
    const out = join(dir, "out");
    const state = join(dir, "state");
    if (!tmpfs(state, "8k")) return ctx.skip("cannot mount a tmpfs here (not root, or no mount permission)");
    const run = runCli(await writeConfig(out, state, "per_page = 1\nitem_bytes = 10"));
    expect(await run.exited, run.output()).toBe(1);
    const lines = run.output().split("\n").filter((l) => l.trim() !== "");
    const fault = lines.filter((l) => /ENOSPC|no space left/i.test(l));
    expect(fault, run.output()).toHaveLength(1);
    expect(fault[0]).toMatch(new RegExp(`cannot write ${state.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}/\\S+: ENOSPC`));
    expect(run.output()).not.toMatch(/\n\s+at /); // no stack frames
  }, 60_000);
});
