// tests/helpers/api.ts: reading a running [api] over its socket: Prometheus text parsed with a
// real parser, JSON routes, and a standalone crawl with the API attached.
import parsePrometheusTextFormat, { type PromFamily } from "parse-prometheus-text-format";
import type { Config } from "../../src/config/index.ts";
import { MemoryPauseFlag } from "../../src/control/pause.ts";
import { ALL_ROLES } from "../../src/engine/flows.ts";
import { type Observed, observeCrawl } from "../../src/engine/observability.ts";
import { runStandalone, type StandaloneResult } from "../../src/engine/standalone.ts";
import { EventBus } from "../../src/events/bus.ts";
import { type CrawlModule, ModuleRegistry } from "../../src/index.ts";
import { CreditMeter } from "../../src/observe/credit.ts";
import { Logger } from "../../src/observe/logger.ts";

/** GET /metrics, parsed. */
export async function scrape(base: string): Promise<PromFamily[]> {
  const res = await fetch(`${base}/metrics`);
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
  return parsePrometheusTextFormat(await res.text());
}

/** Sum of a family's samples whose labels include `match`. */
export function sumOf(families: PromFamily[], name: string, match: Record<string, string> = {}): number {
  const f = families.find((x) => x.name === name);
  if (!f) return 0;
  let total = 0;
  for (const m of f.metrics) {
    if (Object.entries(match).every(([k, v]) => m.labels?.[k] === v)) total += Number(m.value ?? m.count ?? 0);
  }
  return total;
}

export async function getJson<T = Record<string, unknown>>(url: string, init?: RequestInit): Promise<{ status: number; body: T }> {
  const res = await fetch(url, init);
  return { status: res.status, body: (await res.json()) as T };
}

export interface ApiCrawl {
  base: string;
  pause: MemoryPauseFlag;
  logLines: string[];
  /** resolves when the crawl is drained (or stopped) */
  done: Promise<StandaloneResult>;
  /** stops the API (after `done`) */
  close(): Promise<void>;
}

/** A standalone crawl of `modules` with the API on `config.api`; the API stays up after the drain until close(). */
export async function crawlWithApi(config: Config, modules: CrawlModule<unknown>[], signal?: AbortSignal): Promise<ApiCrawl> {
  const registry = new ModuleRegistry(config.modules);
  for (const m of modules) registry.register(m);
  const events = new EventBus();
  const pause = new MemoryPauseFlag(events);
  const credit = new CreditMeter();
  const logLines: string[] = [];
  const logger = new Logger(config.logger, (l) => logLines.push(l));
  let observed: Observed | undefined;
  let ready!: () => void;
  const started = new Promise<void>((r) => (ready = r));
  const done = runStandalone({
    config,
    registry,
    events,
    signal,
    pause,
    credit,
    onStart: async ({ queue, workerId }) => {
      observed = await observeCrawl({ config, events, queue, registry, logger, node: { id: workerId, roles: ALL_ROLES }, credit, control: pause });
      ready();
    },
  });
  await Promise.race([started, done]);
  const port = observed?.server?.port;
  if (!port) throw new Error("the API did not start");
  return { base: `http://127.0.0.1:${port}`, pause, logLines, done, close: async () => observed?.stop() };
}
