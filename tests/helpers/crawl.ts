import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Config, defaultConfig } from "../../src/config/index.ts";
import { EventBus } from "../../src/events/bus.ts";
import type { CrawlEvent } from "../../src/events/events.ts";
import { runStandalone, type StandaloneResult } from "../../src/engine/standalone.ts";
import type { CrawlModule } from "../../src/modules/define.ts";
import { ModuleRegistry } from "../../src/modules/registry.ts";
import { TOPICS } from "../../src/model/index.ts";
import type { Queue } from "../../src/queue/queue.ts";

/** A config for tests: small retry delays, output in a temp dir. */
export async function testConfig(patch: (c: Config) => void = () => {}): Promise<Config> {
  const c = defaultConfig();
  c.output.path = await mkdtemp(join(tmpdir(), "mocra-test-"));
  c.crawler.retryBaseDelayMs = 50;
  c.crawler.retryMaxDelayMs = 400;
  c.crawler.shutdownTimeoutSecs = 5;
  patch(c);
  return c;
}

export interface CrawlRun extends StandaloneResult {
  items: Record<string, unknown>[];
  events: CrawlEvent[];
}

/** Runs the modules standalone, collecting every event and the JSONL items written. */
export async function crawl(config: Config, modules: CrawlModule<any>[], signal?: AbortSignal): Promise<CrawlRun> {
  const registry = new ModuleRegistry(config.modules);
  for (const m of modules) registry.register(m as CrawlModule<unknown>);
  const bus = new EventBus();
  const events: CrawlEvent[] = [];
  bus.events$.subscribe((e) => events.push(e));
  const result = await runStandalone({ config, registry, events: bus, signal });
  const items: Record<string, unknown>[] = [];
  for (const m of modules) {
    const text = await readFile(join(config.output.path, `${m.name}.jsonl`), "utf8").catch(() => "");
    for (const line of text.split("\n")) if (line) items.push(JSON.parse(line));
  }
  return { ...result, items, events };
}

export async function cleanup(config: Config): Promise<void> {
  await rm(config.output.path, { recursive: true, force: true });
}

/**
 * Every page fetched once, except that a request the engine retried (a timeout on a loaded
 * machine, say) may be fetched once more per retry: at-least-once refetches are bounded by the
 * retries the events report, never unexplained. `hits`: path → requests seen by the server.
 */
export function expectFetchedOnceBarRetries(hits: Map<string, number>, events: readonly CrawlEvent[]): void {
  const retriesOf = new Map<string, number>();
  for (const e of events) {
    if (e.type !== "retry_scheduled" || !e.url) continue;
    const path = new URL(e.url).pathname + new URL(e.url).search;
    retriesOf.set(path, (retriesOf.get(path) ?? 0) + 1);
  }
  let refetches = 0;
  for (const [path, n] of hits) {
    if (n === 1) continue;
    const retries = retriesOf.get(path) ?? 0;
    if (n > 1 + retries) throw new Error(`${path} fetched ${n} times with ${retries} retries: a duplicate fetch no retry explains`);
    refetches += n - 1;
  }
  // bounded: a loaded machine may time out a few requests, not a crawl's worth
  if (refetches > Math.max(5, hits.size * 0.05)) throw new Error(`${refetches} refetches over ${hits.size} pages: more than 5 %`);
}

/**
 * Waits until `queue` is drained: nothing ready, pending or delayed on any topic, three polls
 * (150 ms apart) in a row. Throws `what` after `timeoutMs`.
 */
export async function waitDrained(queue: Pick<Queue, "stats">, timeoutMs: number, what = "not drained"): Promise<void> {
  let quiet = 0;
  const deadline = Date.now() + timeoutMs;
  while (quiet < 3) {
    if (Date.now() > deadline) throw new Error(what);
    await new Promise((r) => setTimeout(r, 150));
    const st = await queue.stats();
    const busy = TOPICS.some((t) => st[t].inFlight + st[t].delayed + st[t].ready.high + st[t].ready.normal + st[t].ready.low > 0);
    quiet = busy ? 0 : quiet + 1;
  }
}
