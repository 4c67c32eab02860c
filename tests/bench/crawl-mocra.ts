// tests/bench/crawl-mocra.ts: one mocra-ts standalone crawl of the mock shop (runStandalone on
// in-memory queues, modules/demo_shop.ts, JSONL sink in a temp dir), as benchmark_compare runs it.
//
//   node --import tsx tests/bench/crawl-mocra.ts --url URL --items N --concurrency C [--rss-every MS] [--max-secs S]
//        [--downloader default|ky] [--metrics] [--v8-defaults]
//
// V8 runs with the flags the `run-standalone` CLI sets (preferSteadyMemory: --heap-growing-percent=20),
// so CPU and RSS are what a user's crawl costs; --v8-defaults leaves V8's defaults instead.
//
// --metrics: with the Prometheus metrics subscriber on the EventBus (what [api] adds), to
// measure its cost against the same crawl without it.
//
// Prints RESULT {"pages","items","ms","cpuMs","peakRssMb","rss":{first,middle,last,...}}: wall time and
// CPU (process.cpuUsage, user+sys) from submitting the task to the drained queue; module loading
// and start-up excluded. With --max-secs the crawl stops taking new work after S seconds (in-flight
// pages finish): "partial": true, and the figures are rates over what was done.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadRegistry } from "../../src/commands/common.ts";
import { defaultConfig } from "../../src/config/index.ts";
import { runStandalone } from "../../src/engine/standalone.ts";
import { EventBus } from "../../src/events/bus.ts";
import { CreditMeter } from "../../src/observe/credit.ts";
import { EngineMetrics } from "../../src/observe/metrics.ts";
import { HttpClient } from "../../src/download/http-client.ts";
import { kyTransport } from "../../src/runtime/ky-transport.ts";
import { preferSteadyMemory } from "../../src/runtime/index.ts";
import { argValue, hasFlag, machineBusyMs, numArg, printResult, rssSampler } from "./common.ts";

if (!hasFlag("v8-defaults")) preferSteadyMemory(); // as src/cli.ts does before any command
const url = argValue("url");
if (!url) throw new Error("--url is required");
const items = numArg("items", 20_000);
const concurrency = numArg("concurrency", 64);
const rssEvery = numArg("rss-every", 1000);
/** time box: stop taking new work after this many seconds (0 = crawl everything) */
const maxSecs = numArg("max-secs", 0);
/** "default" (the engine's HttpClient with the runtime's transport: undici on Node) or "ky" (HttpClient over ky + global fetch, the Deno/proxy transport) */
const downloaderName = argValue("downloader") ?? "default";

const out = mkdtempSync(join(tmpdir(), "mocra-bench-"));
const config = defaultConfig();
config.name = `bench_${process.pid}`;
config.crawler.taskConcurrency = concurrency;
// the comparison runs every crawler at C requests in flight to one host: no per-domain cap below
// that (the default domain_concurrency = 8, Scrapy's, held mocra-ts at 8 in flight)
config.downloadConfig.domainConcurrency = 0;
config.crawler.shutdownTimeoutSecs = 5;
config.output.sink = "jsonl";
config.output.path = out;
const registry = await loadRegistry(config, { demo_shop: { start_url: `${url}/list/0` } });

const downloader =
  downloaderName === "ky"
    ? new HttpClient({
        userAgent: config.crawler.userAgent,
        maxBodyBytes: config.downloadConfig.maxResponseSize,
        maxRedirects: config.downloadConfig.maxRedirects,
        transport: kyTransport(),
      })
    : undefined;
const events = new EventBus();
const credit = new CreditMeter();
const metrics = hasFlag("metrics") ? new EngineMetrics(events, { nodeId: "bench", credit }) : undefined;
/** a time-boxed crawl of the same shop first, untimed (own name, queue and output): the timed crawl starts with warm JIT code */
const warmupSecs = numArg("warmup-secs", 0);
if (warmupSecs > 0) {
  const warm = { ...config, name: `${config.name}_warmup`, output: { ...config.output, path: join(out, "warmup") } };
  const stop = new AbortController();
  const timer = setTimeout(() => stop.abort(), warmupSecs * 1000);
  await runStandalone({ config: warm, registry, modules: ["demo_shop"], progress: false, signal: stop.signal, downloader, events: new EventBus(), credit: new CreditMeter() });
  clearTimeout(timer);
}
const rss = rssSampler(rssEvery);
const cpu0 = process.cpuUsage();
const busy0 = machineBusyMs();
const crawlStartUs = Number(process.hrtime.bigint() / 1000n);
const t0 = performance.now();
const controller = new AbortController();
const box = maxSecs > 0 ? setTimeout(() => controller.abort(), maxSecs * 1000) : undefined;
const result = await runStandalone({ config, registry, modules: ["demo_shop"], progress: false, signal: controller.signal, downloader, events, credit });
clearTimeout(box);
const ms = performance.now() - t0;
const crawlEndUs = Number(process.hrtime.bigint() / 1000n);
const machineBusy = machineBusyMs() - busy0;
const cpu = process.cpuUsage(cpu0);
const mem = rss.stop();
// where the RSS is at the end of the crawl: V8's heap, memory outside it (Buffers, fetch), the rest is code and the runtime's own
const usage = process.memoryUsage();
// the scrape is part of having metrics on (once at the end here: a real scrape comes every few seconds)
const scraped = metrics ? (await metrics.render()).length : 0;
rmSync(out, { recursive: true, force: true });
printResult({
  crawler: metrics ? "mocra-ts+metrics" : "mocra-ts",
  metricsBytes: scraped,
  pages: result.stats.pages,
  items: result.stats.items,
  errors: result.stats.errors + result.stats.httpErrors,
  dead: Object.values(result.deadLetters).reduce((a, b) => a + b, 0),
  partial: result.interrupted,
  ms,
  cpuMs: (cpu.user + cpu.system) / 1000,
  peakRssMb: mem.peak,
  /** CPU ms all processes on the machine used during the crawl */
  machineBusyMs: machineBusy,
  crawlStartUs,
  crawlEndUs,
  rss: { first: mem.first, middle: mem.middle, last: mem.last, samples: items >= 100_000 ? mem.samples : undefined },
  memoryAtEndMb: { rss: usage.rss / 1048576, heapTotal: usage.heapTotal / 1048576, heapUsed: usage.heapUsed / 1048576, external: usage.external / 1048576, arrayBuffers: usage.arrayBuffers / 1048576 },
});
process.exit(0);
