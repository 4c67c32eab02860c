// Crawl traps end by themselves with default settings, as a user meets them: a real
// run-standalone process (and two start-worker processes sharing Redis) with a module that
// follows every link, against a local site with an endless calendar (/cal?day=N links day N+1)
// and a deep pagination (/list?page=1..1000 in a chain, each listing one new item).
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { readStatus } from "../src/commands/status.ts";
import { loadConfig } from "../src/config/index.ts";
import { TOPICS } from "../src/model/index.ts";
import { itemStreamKey } from "../src/storage/redis-sink.ts";
import { html, startServer, type TestServer } from "./helpers/http-server.ts";
import { deleteNamespace, rawClient, requireRedis, uniqueName } from "./helpers/redis.ts";
import { runCliProcess } from "./helpers/standalone-process.ts";
import { ROOT, runCli, startWorker, waitFor, type WorkerProcess, writeConfig } from "./helpers/worker-process.ts";

const PAGES = 1000;
/** the calendar is endless to a crawler; the server stops at this day only so old code ends too */
const CALENDAR_END = 400;

let server: TestServer | undefined;
let dir: string | undefined;
let workers: WorkerProcess[] = [];
let namespace: string | undefined;

afterEach(async () => {
  for (const w of workers) if (w.child.exitCode === null) w.child.kill("SIGKILL");
  workers = [];
  await server?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
  if (namespace) await deleteNamespace(namespace);
  server = dir = namespace = undefined;
});

async function trapSite(pages = PAGES): Promise<TestServer> {
  const nav = `<a href="/">home</a> <a href="/about">about</a>`;
  return startServer((req, res) => {
    const u = new URL(req.url ?? "/", "http://x");
    if (u.pathname === "/") return html(res, `${nav} <a href="/cal?day=1">calendar</a> <a href="/list?page=1">list</a>`);
    if (u.pathname === "/about") return html(res, `${nav} about`);
    if (u.pathname === "/cal") {
      const day = Number(u.searchParams.get("day"));
      return html(res, `${nav} <h1>day ${day}</h1>${day < CALENDAR_END ? `<a href="/cal?day=${day + 1}">next day</a>` : ""}`);
    }
    if (u.pathname === "/list") {
      const page = Number(u.searchParams.get("page"));
      return html(res, `${nav} <a href="/item/${page}">item ${page}</a>${page < pages ? `<a href="/list?page=${page + 1}">next</a>` : ""}`);
    }
    if (u.pathname.startsWith("/item/")) return html(res, `${nav} <h1>item ${u.pathname.slice(6)}</h1>`);
    html(res, "not found", 404);
  });
}

function maxDay(s: TestServer): number {
  let max = 0;
  for (const path of s.hits.keys()) {
    const m = /^\/cal\?day=(\d+)$/.exec(path);
    if (m) max = Math.max(max, Number(m[1]));
  }
  return max;
}

describe("crawl traps end with default settings", () => {
  it("standalone: the endless calendar stops within 50 hops, the 1 000-page pagination is crawled completely", async () => {
    server = await trapSite();
    dir = await mkdtemp(join(tmpdir(), "mocra-traps-"));
    const config = join(dir, "config.toml");
    await writeFile(
      config,
      `name = "traps_${process.pid}"\n[crawler]\nmodule_paths = ["tests/fixtures/traps"]\ntask_concurrency = 16\n` +
        `[output]\npath = ${JSON.stringify(join(dir, "out"))}\n[state]\ndir = ${JSON.stringify(join(dir, "state"))}\n` +
        `[modules.follow_all]\nurl = ${JSON.stringify(server.url)}\n`,
    );
    const run = runCliProcess(["run-standalone", "--config", config, "--module", "follow_all"]);
    const code = await run.exited;
    const out = run.output();
    expect(code, out).toBe(0);
    const day = maxDay(server);
    expect(day, "the calendar chain stopped").toBeLessThanOrEqual(50);
    expect(day).toBeGreaterThan(5);
    for (let p = 1; p <= PAGES; p++) expect(server.hits.get(`/list?page=${p}`), `list page ${p}`).toBe(1);
    const items = (await readFile(join(dir, "out", "follow_all.jsonl"), "utf8")).split("\n").filter(Boolean);
    expect(items).toHaveLength(PAGES);
    expect(out).toMatch(/crawl trap/);
  }, 240_000);

  it("two start-worker processes: the trail travels with each request, so the calendar stops whichever worker fetches a day", async () => {
    if (!(await requireRedis("crawl traps, distributed"))) return;
    const pages = 100;
    server = await trapSite(pages);
    namespace = uniqueName();
    const cfg = await writeConfig(
      `name = "${namespace}"\n[crawler]\ntask_concurrency = 4\nmodule_paths = ["${ROOT}tests/fixtures/traps"]\n` +
        `[output]\nsink = "redis"\n[modules.follow_all]\nurl = ${JSON.stringify(server.url)}\n`,
    );
    workers = [await startWorker(cfg), await startWorker(cfg)];
    expect((await runCli(["submit", "follow_all", "--config", cfg])).code).toBe(0);
    const r = rawClient();
    const idle = async () => {
      const st = await readStatus(await loadConfig(cfg));
      return TOPICS.every((t) => st.topics[t].delayed === 0 && Object.values(st.topics[t].priorities).every((p) => p.waiting === 0 && p.pending === 0));
    };
    try {
      await waitFor(`${pages} items`, async () => (await r.xlen(itemStreamKey(namespace!, "follow_all"))) >= pages, 150_000);
      await waitFor("an idle queue", idle, 60_000);
      expect(await r.xlen(itemStreamKey(namespace, "follow_all"))).toBe(pages);
    } finally {
      r.disconnect();
    }
    const day = maxDay(server);
    expect(day, "the calendar chain stopped").toBeLessThanOrEqual(50);
    for (const w of workers) w.child.kill("SIGTERM");
    const outs = await Promise.all(workers.map(async (w) => (await w.exited, w.output())));
    expect(outs.join("\n")).toMatch(/crawl trap/);
  }, 240_000);
});
