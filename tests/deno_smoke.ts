// Deno smoke test of the real flows (run by `deno task test` and .ci/run): the demo crawl,
// end to end, with the same assertions as under Node.
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { defaultConfig } from "../src/config/index.ts";
import { startShop } from "../examples/demo-shop/shop.ts";
import { runStandalone } from "../src/engine/standalone.ts";
import { ModuleRegistry } from "../src/modules/registry.ts";
import demoShop from "../modules/demo_shop.ts";

function check(cond: boolean, what: string): void {
  if (!cond) {
    console.error(`deno smoke test FAILED: ${what}`);
    process.exit(1);
  }
}

const runtime = "Deno" in globalThis ? "deno" : "node";
const items = 200;
const shop = await startShop({ items });
const config = defaultConfig();
config.output.path = await mkdtemp(join(tmpdir(), "mocra-smoke-"));
const registry = new ModuleRegistry({ demo_shop: { start_url: `${shop.url}/list/0` } }).register(demoShop);
const result = await runStandalone({ config, registry, modules: ["demo_shop"] });
const lines = (await readFile(join(config.output.path, "demo_shop.jsonl"), "utf8")).split("\n").filter(Boolean);
await shop.close();
await rm(config.output.path, { recursive: true, force: true });

check(lines.length === items, `expected ${items} items, got ${lines.length}`);
check(new Set(lines.map((l) => JSON.parse(l).url)).size === items, "duplicate items");
check([...shop.hits.values()].every((n) => n === 1), "a page was fetched more than once");
check(result.stats.pages === items + Math.ceil(items / 50), `expected ${items + 4} pages, got ${result.stats.pages}`);
console.log(`deno smoke test passed on ${runtime}: demo crawl ${result.stats.pages} pages, ${lines.length} items in ${result.stats.elapsedSecs.toFixed(1)} s`);

// A proxied, rate-limited crawl: 20 pages at 20 req/s through a forward proxy started here
// (Deno's transport: Deno.createHttpClient({ proxy })). Every request must reach the server
// through the proxy, evenly spaced.
{
  const { startForwardProxy, startHostsServer, gaps, ratePerSec, summary } = await import("./helpers/polite-servers.ts");
  const { writeFile } = await import("node:fs/promises");
  const { defineModule } = await import("../src/modules/define.ts");
  const server = await startHostsServer(["127.0.0.1"], (req, res) => {
    if (req.url === "/robots.txt") return void res.writeHead(404).end();
    res.writeHead(200, { "content-type": "text/html" }).end(`<h1>${req.url}</h1>`);
  });
  const proxy = await startForwardProxy();
  const dir = await mkdtemp(join(tmpdir(), "mocra-smoke-proxy-"));
  await writeFile(join(dir, "proxies.txt"), `# smoke\nhttp://smoke:pw@127.0.0.1:${proxy.port}\n`);
  const cfg = defaultConfig();
  cfg.output.path = dir;
  cfg.crawler.proxyPath = join(dir, "proxies.txt");
  cfg.downloadConfig.rateLimit = 20;
  const base = server.urls["127.0.0.1"];
  const pages = defineModule({ name: "proxied_pages", start: () => Array.from({ length: 20 }, (_, i) => `${base}/p/${i}`), parse: (page, ctx) => ctx.emit({ url: page.url }) });
  const proxied = await runStandalone({ config: cfg, registry: new ModuleRegistry().register(pages), modules: ["proxied_pages"] });
  const hits = server.hits.filter((h) => h.path.startsWith("/p/"));
  const direct = server.hits.filter((h) => !proxy.upstreamPorts.has(h.remotePort)).length;
  const times = hits.map((h) => h.at);
  const rate = ratePerSec(times);
  const g = summary(gaps(times));
  await server.close();
  await proxy.close();
  await rm(dir, { recursive: true, force: true });
  check(hits.length === 20, `proxied crawl: expected 20 pages at the server, got ${hits.length}`);
  check(proxied.stats.pages === 20, `proxied crawl: expected 20 pages, got ${proxied.stats.pages}`);
  check(direct === 0, `proxied crawl: ${direct} requests reached the server without the proxy`);
  check(proxy.forwarded + proxy.tunnels > 0 && proxy.auth.length > 0, "proxied crawl: the proxy saw no authenticated request");
  check(rate > 18 && rate < 22, `proxied crawl: ${rate.toFixed(2)} req/s at the server, expected 20 ± 10 %`);
  // evenly spaced, no burst: a loaded machine may delay one request (one short gap after one long)
  const sorted = gaps(times).sort((a, b) => a - b);
  const p10 = sorted[Math.floor(sorted.length * 0.1)];
  check(p10 > 30 && g.max < 150, `proxied crawl: uneven gaps (p10 ${p10.toFixed(1)} ms, min ${g.min.toFixed(1)} ms, max ${g.max.toFixed(1)} ms)`);
  console.log(
    `deno smoke test passed on ${runtime}: proxied crawl ${hits.length} pages through the proxy (${proxy.forwarded} forwarded, ${proxy.tunnels} tunnels), ${rate.toFixed(2)} req/s, gaps ${g.min.toFixed(1)}..${g.max.toFixed(1)} ms`,
  );
}

// Middleware (Ajv schema, required fields, a second store sink) and a cron schedule fired by
// run-standalone's scheduler, on this runtime; the Redis lock/leader/cron paths run on Deno in
// tests/sync-lock.test.ts and tests/sync-leader-cron.test.ts.
{
  const { defineModule } = await import("../src/modules/define.ts");
  const { itemSchema, requiredFields } = await import("../src/middleware/builtin.ts");
  const { storeMiddleware } = await import("../src/modules/middleware.ts");
  const { JsonlSink } = await import("../src/storage/jsonl-sink.ts");
  const { startServer, html } = await import("./helpers/http-server.ts");
  const runs = new Set<string>();
  const server = await startServer((req, res) => {
    if (req.url === "/robots.txt") return html(res, "", 404);
    runs.add(new URL(req.url!, "http://x").searchParams.get("run") ?? "");
    const n = Number(new URL(req.url!, "http://x").searchParams.get("n"));
    html(res, `<h1>t${n}</h1>${n % 2 === 0 ? "" : `<b>${n}</b>`}`);
  });
  const dir = await mkdtemp(join(tmpdir(), "mocra-smoke-mw-"));
  const copy = await mkdtemp(join(tmpdir(), "mocra-smoke-mw-copy-"));
  const cfg = defaultConfig();
  cfg.output.path = dir;
  const mod = defineModule({
    name: "mw_pages",
    cron: "* * * * * *",
    start: (ctx) => Array.from({ length: 4 }, (_, n) => ({ url: `${server.url}/p?n=${n}&run=${ctx.task.runId}`, dedup: false })),
    parse: (page, ctx) => ctx.emit({ title: page.text("h1"), price: page.text("b") }),
    middleware: [storeMiddleware("copy", new JsonlSink(copy), 5)],
  });
  const stop = new AbortController();
  const timer = setInterval(() => runs.size >= 3 && stop.abort(), 50);
  const scheduled = await runStandalone({
    config: cfg,
    registry: new ModuleRegistry().register(mod),
    modules: ["mw_pages"],
    schedule: true,
    signal: stop.signal,
    middleware: [requiredFields(["price"]), itemSchema({ type: "object", properties: { title: { type: "string", pattern: "^t\\d$" } } })],
  });
  clearInterval(timer);
  const read = async (d: string) => (await readFile(join(d, "mw_pages.jsonl"), "utf8").catch(() => "")).split("\n").filter(Boolean).length;
  const [kept, copied] = [await read(dir), await read(copy)];
  await server.close();
  await rm(dir, { recursive: true, force: true });
  await rm(copy, { recursive: true, force: true });
  check(runs.size >= 3, `schedule: expected >= 3 runs fired, got ${runs.size}`);
  check(kept > 0 && kept === copied, `middleware: ${kept} items in the output, ${copied} in the second sink`);
  check(scheduled.stats.dropped === scheduled.stats.pages / 2, `middleware: ${scheduled.stats.dropped} dropped of ${scheduled.stats.pages} pages (half have no price)`);
  console.log(`deno smoke test passed on ${runtime}: ${runs.size} scheduled runs, ${kept} items in two sinks, ${scheduled.stats.dropped} dropped by middleware`);
}

// The [api] on this runtime (Deno.serve under Deno): a demo crawl with the API on a free port;
// /metrics parsed and equal to the shop's count, /health, the dashboard page, auth.
{
  const { crawlWithApi, scrape, sumOf } = await import("./helpers/api.ts");
  const { freePort } = await import("./helpers/redis.ts");
  const apiShop = await startShop({ items: 50 });
  const cfg = defaultConfig();
  cfg.output.path = await mkdtemp(join(tmpdir(), "mocra-smoke-api-"));
  cfg.crawler.obeyRobotsTxt = false;
  cfg.api.port = await freePort();
  cfg.api.apiKey = "smoke-key";
  cfg.modules = { demo_shop: { start_url: `${apiShop.url}/list/0` } };
  const run = await crawlWithApi(cfg, [demoShop]);
  await run.done;
  const metrics = await scrape(run.base);
  const downloads = sumOf(metrics, "mocra_throughput_total", { stage: "download" });
  const health = await fetch(`${run.base}/health`);
  const healthBody = (await health.json()) as { status: string; runtime: string };
  const page = await fetch(`${run.base}/`);
  const pageText = await page.text();
  const noKey = (await fetch(`${run.base}/control/pause`, { method: "POST" })).status;
  const withKey = await fetch(`${run.base}/control/pause`, { method: "POST", headers: { authorization: "Bearer smoke-key" } });
  const pausedBody = (await withKey.json()) as { paused: { all: boolean } };
  await run.close();
  await apiShop.close();
  await rm(cfg.output.path, { recursive: true, force: true });
  check(downloads === apiShop.totalHits && downloads === 51, `api: mocra_throughput_total{stage="download"} ${downloads}, shop saw ${apiShop.totalHits}`);
  check(health.status === 200 && healthBody.status === "ok" && healthBody.runtime === runtime, `api: /health answered ${health.status} ${JSON.stringify(healthBody)}`);
  check(page.status === 200 && pageText.includes("mocra-ts dashboard"), "api: GET / is not the dashboard");
  check(noKey === 401 && withKey.status === 200 && pausedBody.paused.all === true, `api: auth answered ${noKey} without the key, ${withKey.status} with it`);
  console.log(`deno smoke test passed on ${runtime}: [api] served ${downloads} pages' metrics, /health, the dashboard and auth on port ${cfg.api.port}`);
}
