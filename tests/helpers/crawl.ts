import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Config, defaultConfig } from "../../src/config/index.ts";
import { EventBus } from "../../src/events/bus.ts";
import type { CrawlEvent } from "../../src/events/events.ts";
import { runStandalone, type StandaloneResult } from "../../src/engine/standalone.ts";
import type { CrawlModule } from "../../src/modules/define.ts";
import { ModuleRegistry } from "../../src/modules/registry.ts";

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
