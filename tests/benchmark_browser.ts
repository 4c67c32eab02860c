// Benchmark: crawling a client-side rendered shop (tests/fixtures/js-shop) with render = "http"
// (baseline: no product), "browser" (every page rendered) and "auto" (only product pages
// rendered). Prints pages/s, rendered pages/s, CPU seconds and peak memory of this process plus
// its browser processes (sampled from /proc every 250 ms): the sum of their RSS (which counts
// pages shared between Chromium's processes once per process) and of their PSS (shared pages
// divided among their sharers: the real footprint).
//
//   npx tsx tests/benchmark_browser.ts [products=300] [concurrency=2] [recycle=100] [modes=http,browser,auto]
//
// Crawlee's PlaywrightCrawler is not compared: it needs the `playwright` package (not only
// playwright-core) and Crawlee's browser-pool, neither a dependency here; see the closing note.
import { readdirSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { defaultConfig } from "../src/config/index.ts";
import { runStandalone } from "../src/engine/standalone.ts";
import { EventBus } from "../src/events/bus.ts";
import { ModuleRegistry } from "../src/modules/registry.ts";
import jsShop from "./fixtures/js-shop/js_shop.ts";
import { pagesOf, startJsShop } from "./fixtures/js-shop/site.ts";

const products = Number(process.argv[2] ?? 300);
const concurrency = Number(process.argv[3] ?? 2);
const recycle = Number(process.argv[4] ?? 100);
const modes = (process.argv[5] ?? "http,browser,auto").split(",") as Array<"http" | "browser" | "auto">;
const TICK = 100; // clock ticks per second (Linux USER_HZ)
const PAGE = 4096;

/** This process and its descendants: pid → [cpu ticks, rss bytes]. */
function tree(): Map<number, [number, number]> {
  const parent = new Map<number, number>();
  const stats = new Map<number, [number, number]>();
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, "utf8");
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      parent.set(Number(d), Number(f[1]));
      stats.set(Number(d), [Number(f[11]) + Number(f[12]), Number(f[21]) * PAGE]);
    } catch {
      // gone
    }
  }
  const out = new Map<number, [number, number]>();
  for (const [pid, s] of stats) {
    for (let p: number | undefined = pid; p !== undefined && p > 1; p = parent.get(p)) {
      if (p === process.pid) {
        out.set(pid, s);
        break;
      }
    }
  }
  return out;
}

/** Proportional set size (shared pages divided among the processes sharing them), bytes. */
function pssOf(pid: number): number | undefined {
  try {
    const m = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, "utf8"));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

async function run(render: "http" | "browser" | "auto") {
  const shop = await startJsShop(products);
  const config = defaultConfig();
  config.output.path = await mkdtemp(join(tmpdir(), "mocra-bench-browser-"));
  config.crawler.taskConcurrency = 16;
  config.browser.concurrency = concurrency;
  config.browser.recyclePages = recycle;
  config.logger.enabled = false;
  const registry = new ModuleRegistry({ js_shop: { start_url: `${shop.url}/`, render } }).register(jsShop as never);
  const events = new EventBus();
  let rendered = 0;
  events.on("page_rendered").subscribe(() => rendered++);
  let retries = 0;
  events.on("retry_scheduled").subscribe(() => retries++);
  const cpuTicks = new Map<number, number>();
  const cpuStart = tree();
  let peakRss = 0;
  let peakPss = 0;
  const sample = () => {
    let rss = 0;
    let pss = 0;
    for (const [pid, [cpu, r]] of tree()) {
      cpuTicks.set(pid, cpu);
      rss += r;
      pss += pssOf(pid) ?? r;
    }
    peakRss = Math.max(peakRss, rss);
    peakPss = Math.max(peakPss, pss);
  };
  const timer = setInterval(sample, 250);
  const started = performance.now();
  const result = await runStandalone({ config, registry, events, modules: ["js_shop"] });
  const secs = (performance.now() - started) / 1000;
  clearInterval(timer);
  sample();
  let cpu = 0;
  for (const [pid, t] of cpuTicks) cpu += t - (cpuStart.get(pid)?.[0] ?? 0);
  let items = 0;
  try {
    items = readFileSync(join(config.output.path, "js_shop.jsonl"), "utf8").split("\n").filter(Boolean).length;
  } catch {
    // no product stored: no file
  }
  const pages = pagesOf(shop);
  console.log(
    `${render.padEnd(7)} ${String(pages).padStart(5)} pages ${String(items).padStart(5)} products  ${secs.toFixed(1).padStart(6)} s  ${(pages / secs).toFixed(1).padStart(6)} pages/s  ` +
      `rendered ${String(rendered).padStart(4)} (${(rendered / secs).toFixed(1)}/s, ${shop.renders()} at the server)  documents ${shop.documents()}  ` +
      `CPU ${(cpu / TICK).toFixed(1)} s  peak RSS ${(peakRss / 1024 / 1024).toFixed(0)} MB (PSS ${(peakPss / 1024 / 1024).toFixed(0)} MB)  retries ${retries}  dead ${result.deadLetters.request + result.deadLetters.render}`,
  );
  await shop.close();
  await rm(config.output.path, { recursive: true, force: true });
}

console.log(`js shop: ${products} products, browser concurrency ${concurrency}, recycle after ${recycle} pages; load ${readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ")}`);
for (const mode of modes) await run(mode);
console.log(`load ${readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ")}`);
process.exit(0);
