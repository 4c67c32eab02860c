// The [api] of a standalone crawl, over its socket: Prometheus metrics against the test
// server's own count, auth (401/403/429), start_work, and hostile text from the network made inert.
import { afterEach, describe, expect, it } from "vitest";
import type { Config } from "../src/config/index.ts";
import { defineModule } from "../src/index.ts";
import { type ApiCrawl, crawlWithApi, getJson, scrape, sumOf } from "./helpers/api.ts";
import { cleanup, testConfig } from "./helpers/crawl.ts";
import { html, startServer, type TestServer } from "./helpers/http-server.ts";
import { freePort } from "./helpers/redis.ts";

const HOSTILE = "\u001b[2J\u001b[31mowned\u0007 <script>window.__pwned = 1</script>\r\nfake log line";

let server: TestServer | undefined;
let run: ApiCrawl | undefined;
let config: Config | undefined;

afterEach(async () => {
  await run?.close();
  await server?.close();
  if (config) await cleanup(config);
  run = server = config = undefined;
});

/** /p/0 .. /p/<n-1>, each linking to the next two, plus /bad whose parse throws HOSTILE. */
async function site(n: number): Promise<TestServer> {
  return startServer((req, res) => {
    const i = Number(req.url?.split("/")[2] ?? 0);
    const links = [i + 1, i + 2].filter((j) => j < n).map((j) => `<a href="/p/${j}">${j}</a>`);
    if (i === 3) links.push('<a href="/bad/0">bad</a>');
    html(res, `<html><body><h1>page ${i}</h1>${links.join("")}</body></html>`);
  });
}

function siteModule(base: string) {
  return defineModule({
    name: "site",
    start: () => [`${base}/p/0`],
    parse(page, ctx) {
      if (page.url.includes("/bad/")) throw new Error(HOSTILE);
      ctx.emit({ url: page.url, title: page.text("h1") });
      ctx.follow(page.links("a"));
    },
  });
}

async function apiConfig(patch: (c: Config) => void = () => {}): Promise<Config> {
  const port = await freePort();
  return testConfig((c) => {
    c.crawler.obeyRobotsTxt = false;
    c.api.port = port;
    c.api.apiKey = "k3y";
    patch(c);
  });
}

describe("[api] of a standalone crawl", () => {
  it("/metrics, parsed by a Prometheus text parser, counts exactly the pages the server saw", async () => {
    server = await site(40);
    config = await apiConfig();
    run = await crawlWithApi(config, [siteModule(server.url)]);
    const result = await run.done;
    const served = [...server.hits.values()].reduce((a, b) => a + b, 0);
    expect(served).toBe(41); // 40 pages + /bad/0

    const m = await scrape(run.base);
    expect(sumOf(m, "mocra_throughput_total", { stage: "download" })).toBe(served);
    expect(sumOf(m, "mocra_throughput_total", { stage: "download", result: "ok" })).toBe(served);
    expect(sumOf(m, "mocra_throughput_total", { stage: "parse", result: "ok" })).toBe(40);
    expect(sumOf(m, "mocra_throughput_total", { stage: "parse", result: "error" })).toBe(1);
    expect(sumOf(m, "mocra_items_stored_total", { module: "site" })).toBe(40);
    // (the parser loses the labels of histogram samples: read the histogram's count line itself)
    const text = await (await fetch(`${run.base}/metrics`)).text();
    expect(text).toContain(`mocra_latency_seconds_count{stage="download"} ${served}\n`);
    expect(text).toContain(`mocra_latency_seconds_count{stage="parse"} 40\n`);
    expect(sumOf(m, "mocra_errors_total", { stage: "parse", kind: "parse" })).toBe(1);
    expect(sumOf(m, "mocra_dead_letters_total", { topic: "response" })).toBe(1);
    expect(sumOf(m, "mocra_dead_letters", { topic: "response" })).toBe(1);
    expect(sumOf(m, "mocra_node_up")).toBe(1);
    expect(sumOf(m, "mocra_backlog_depth")).toBe(0);
    expect(sumOf(m, "mocra_inflight")).toBe(0);
    expect(sumOf(m, "mocra_paused", { scope: "all" })).toBe(0);
    expect(result.stats.pages).toBe(served);

    const health = await getJson(`${run.base}/health`);
    expect(health).toMatchObject({ status: 200, body: { status: "ok" } });
  });

  it("a hostile dead-letter reason reaches the snapshot, /dlq and the log with its control characters escaped", async () => {
    server = await site(5);
    config = await apiConfig();
    run = await crawlWithApi(config, [siteModule(server.url)]);
    await run.done;

    const snap = await getJson<{ dead_letters: { reason: string; url: string }[] }>(`${run.base}/observability/engine`, { headers: { "x-api-key": "k3y" } });
    expect(snap.body.dead_letters).toHaveLength(1);
    const reason = snap.body.dead_letters[0]!.reason;
    // no raw control character survives; each is shown as a visible escape
    expect(reason).not.toMatch(/[\u0000-\u001f\u007f-\u009f]/);
    expect(reason).toContain("\\u001b[2J\\u001b[31mowned\\u0007");
    expect(reason).toContain("\\u000d\\u000afake log line");
    expect(reason).toContain("<script>"); // kept as text: the page writes it with textContent

    const dlq = await getJson<{ reason: string }[]>(`${run.base}/dlq?topic=response`, { headers: { "x-api-key": "k3y" } });
    expect(dlq.status).toBe(200);
    expect(dlq.body[0]!.reason).toBe(reason);

    // the dashboard's replay button: key required, moves the letter back to its queue
    expect((await fetch(`${run.base}/dlq/replay?topic=response`, { method: "POST" })).status).toBe(401);
    const replayed = await getJson(`${run.base}/dlq/replay?topic=response`, { method: "POST", headers: { "x-api-key": "k3y" } });
    expect(replayed).toEqual({ status: 200, body: { topic: "response", replayed: 1 } });
    expect((await getJson<unknown[]>(`${run.base}/dlq?topic=response`, { headers: { "x-api-key": "k3y" } })).body).toEqual([]);
    expect((await fetch(`${run.base}/dlq?topic=nope`, { headers: { "x-api-key": "k3y" } })).status).toBe(400);

    const line = run.logLines.find((l) => l.includes("dead letter"));
    expect(line).toBeDefined();
    expect(line).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/);
    expect(line!.trimEnd().split("\n")).toHaveLength(1); // the payload's CR LF does not start a second line
    expect(line).toContain("\\u001b[2J");
  });

  it("auth: key routes answer 401 for a missing or wrong key, 200 with Bearer or x-api-key; start_work submits", async () => {
    server = await site(3);
    config = await apiConfig();
    run = await crawlWithApi(config, [siteModule(server.url)]);
    await run.done;
    const post = (path: string, headers: Record<string, string> = {}, body?: unknown) =>
      fetch(`${run!.base}${path}`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: body === undefined ? undefined : JSON.stringify(body) });

    expect((await post("/control/pause")).status).toBe(401);
    expect((await post("/control/pause", { "x-api-key": "wrong" })).status).toBe(401);
    expect((await post("/control/pause", { authorization: "Bearer wrong" })).status).toBe(401);
    expect((await fetch(`${run.base}/nodes`)).status).toBe(401);
    expect((await fetch(`${run.base}/dlq`)).status).toBe(401);
    const paused = await post("/control/pause", { authorization: "Bearer k3y" });
    expect(paused.status).toBe(200);
    expect(await paused.json()).toEqual({ paused: { all: true, modules: [] } });
    expect(run.pause.paused).toBe(true);
    const resumed = await post("/control/resume", { "x-api-key": "k3y" });
    expect(await resumed.json()).toEqual({ paused: { all: false, modules: [] } });
    const perModule = await post("/control/pause?module=site", { "x-api-key": "k3y" });
    expect(await perModule.json()).toEqual({ paused: { all: false, modules: ["site"] } });
    expect(run.pause.isModulePaused("site")).toBe(true);

    const submitted = await post("/start_work", { "x-api-key": "k3y" }, { module: "site", priority: "high" });
    expect(submitted.status).toBe(200);
    expect(await submitted.json()).toMatchObject({ modules: ["site"], priority: "high", run_id: expect.any(String) });
    const unknown = await post("/start_work", { "x-api-key": "k3y" }, { module: "nope" });
    expect(unknown.status).toBe(400);
    expect(((await unknown.json()) as { error: string }).error).toMatch(/no module named "nope" \(known: site\)/);
    const notJson = await fetch(`${run.base}/start_work`, { method: "POST", headers: { "x-api-key": "k3y" }, body: "{" });
    expect(notJson.status).toBe(400);

    // the monitoring routes need no key
    expect((await fetch(`${run.base}/metrics`)).status).toBe(200);
    expect((await fetch(`${run.base}/observability/engine`)).status).toBe(200);
    expect((await fetch(`${run.base}/`)).headers.get("content-type")).toMatch(/text\/html/);
  });

  it("auth: with no api_key configured the key routes answer 403, even with a key", async () => {
    server = await site(3);
    config = await apiConfig((c) => (c.api.apiKey = ""));
    run = await crawlWithApi(config, [siteModule(server.url)]);
    await run.done;
    for (const headers of [{}, { "x-api-key": "anything" }] as Record<string, string>[]) {
      const res = await fetch(`${run.base}/control/pause`, { method: "POST", headers });
      expect(res.status).toBe(403);
      expect(((await res.json()) as { error: string }).error).toMatch(/api_key/);
    }
    expect((await fetch(`${run.base}/nodes`)).status).toBe(403);
    expect(run.pause.paused).toBe(false);
  });

  it("rate_limit: a caller over its requests/s gets 429; / and /health are never limited; callers are counted apart", async () => {
    server = await site(3);
    config = await apiConfig((c) => (c.api.rateLimit = 2));
    run = await crawlWithApi(config, [siteModule(server.url)]);
    await run.done;
    const statuses = await Promise.all(Array.from({ length: 8 }, () => fetch(`${run!.base}/metrics`).then((r) => r.status)));
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThanOrEqual(5); // 2 per second window
    expect(statuses.filter((s) => s === 200).length).toBeGreaterThanOrEqual(1);
    const keyed = await fetch(`${run.base}/nodes`, { headers: { "x-api-key": "k3y" } });
    expect(keyed.status).toBe(200); // its own bucket, not the anonymous one
    const health = await Promise.all(Array.from({ length: 8 }, () => fetch(`${run!.base}/health`).then((r) => r.status)));
    expect(health.every((s) => s === 200)).toBe(true);
  });
});
