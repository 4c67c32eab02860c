import { spawn } from "node:child_process";
import { afterEach, describe, expect, it } from "vitest";
import { EventBus } from "../src/events/bus.ts";
import type { CrawlEvent } from "../src/events/events.ts";
import { ModuleRegistry } from "../src/modules/registry.ts";
import { MemoryQueue } from "../src/queue/memory-queue.ts";
import { schedulesOf } from "../src/modules/schedules.ts";
import { CronScheduler, MemoryTickProgress, parseCron, tickOfRunId, tickRunId } from "../src/sync/cron.ts";
import { SOLE_LEADER } from "../src/sync/leader.ts";
import ticker from "./fixtures/modules/ticker.ts";
import { html, startServer, type TestServer } from "./helpers/http-server.ts";
import { ROOT, writeConfig } from "./helpers/worker-process.ts";

let server: TestServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

describe("cron expressions (mocra's cron crate forms)", () => {
  const next = (expr: string, from: string) => parseCron(expr).nextRun(new Date(from))!.toISOString();
  it("reads seconds, years, names, ?, L, # and Quartz weekdays (1 = SUN), in UTC", () => {
    expect(next("*/2 * * * * *", "2026-12-02T06:40:00.000Z")).toBe("2026-12-02T06:40:02.000Z");
    expect(next("0 30 9 1 * * 2027", "2026-12-02T00:00:00Z")).toBe("2027-01-01T09:30:00.000Z");
    expect(next("0 0 12 ? * MON-FRI", "2026-12-05T00:00:00Z")).toBe("2026-12-07T12:00:00.000Z"); // Sat → Mon
    expect(next("0 0 12 * * 2#1", "2026-12-02T00:00:00Z")).toBe("2026-12-07T12:00:00.000Z"); // first Monday
    expect(next("0 0 0 L * *", "2026-12-02T00:00:00Z")).toBe("2026-12-31T00:00:00.000Z");
    expect(next("0 0 * * *", "2026-12-02T06:40:00Z")).toBe("2026-12-03T00:00:00.000Z"); // 5 fields: no seconds
  });

  it("a bad expression names the module", () => {
    const registry = new ModuleRegistry({ ticker: { cron: "every tuesday" } }).register(ticker);
    expect(() => schedulesOf(registry)).toThrow(/module ticker: cron "every tuesday" is not a cron expression/);
  });

  it("[modules.<name>] cron overrides the module's", () => {
    const registry = new ModuleRegistry({ ticker: { cron: "*/5 * * * * *" } }).register(ticker);
    expect(schedulesOf(registry).map((s) => s.expression)).toEqual(["*/5 * * * * *"]);
    expect(schedulesOf(new ModuleRegistry().register(ticker)).map((s) => s.expression)).toEqual(["0 0 0 1 1 ? 2099"]);
  });

  it("a tick's run id is a UUID v7 carrying the tick, the same on every worker", () => {
    const id = tickRunId("crawl", "ticker", 1_796_000_000_000);
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(tickOfRunId(id)).toBe(1_796_000_000_000);
    expect(tickRunId("crawl", "ticker", 1_796_000_000_000)).toBe(id);
    expect(tickRunId("crawl", "other", 1_796_000_000_000)).not.toBe(id);
  });
});

describe("misfires", () => {
  it("ticks missed within the tolerance are submitted late, older ones skipped with an event", async () => {
    const registry = new ModuleRegistry({ ticker: { cron: "* * * * * *" } }).register(ticker);
    const queue = new MemoryQueue();
    const progress = new MemoryTickProgress();
    const now = Date.now();
    await progress.init("ticker", Math.floor(now / 1000) * 1000 - 10_000); // the last leader stopped 10 s ago
    const bus = new EventBus();
    const events: CrawlEvent[] = [];
    bus.events$.subscribe((e) => events.push(e));
    const scheduler = new CronScheduler({
      name: "t",
      schedules: schedulesOf(registry),
      queue,
      leadership: SOLE_LEADER,
      progress,
      misfireToleranceMs: 4_500,
      concurrency: 1,
      events: bus,
    }).start();
    await new Promise((r) => setTimeout(r, 300));
    await scheduler.stop();
    const skipped = events.filter((e) => e.type === "schedule_skipped");
    const submitted = events.filter((e) => e.type === "schedule_submitted");
    expect(skipped).toHaveLength(1);
    expect(skipped[0]).toMatchObject({ module: "ticker" });
    const s0 = skipped[0] as Extract<CrawlEvent, { type: "schedule_skipped" }>;
    expect(s0.ticks).toBeGreaterThanOrEqual(4);
    expect(s0.ticks).toBeLessThanOrEqual(6);
    expect(submitted.length).toBeGreaterThanOrEqual(4);
    for (const e of submitted) expect((e as { lateMs: number }).lateMs).toBeLessThanOrEqual(4_500 + 300);
    expect(s0.ticks + submitted.length).toBeGreaterThanOrEqual(10);
    expect(await queue.depth("task")).toBe(submitted.length);
  });
});

describe("run-standalone --schedule", () => {
  it("keeps running and fires the schedule itself until Ctrl-C", async () => {
    const runs = new Set<string>();
    server = await startServer((req, res) => {
      if (req.url === "/robots.txt") return html(res, "", 404);
      runs.add(new URL(req.url!, "http://x").searchParams.get("run") ?? "");
      html(res, "ok");
    });
    const cfg = await writeConfig(`[crawler]\nmodule_paths = ["tests/fixtures/modules"]\n[modules.ticker]\ncron = "* * * * * *"\nurl = "${server.url}"\n`);
    const child = spawn(process.execPath, ["--import", "tsx", "src/cli.ts", "run-standalone", "--config", cfg, "--module", "ticker", "--schedule"], {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
    const deadline = Date.now() + 60_000;
    while (runs.size < 3 && Date.now() < deadline && child.exitCode === null) await new Promise((r) => setTimeout(r, 50));
    child.kill("SIGINT");
    expect(await exited, out).toBe(0);
    expect(runs.size).toBeGreaterThanOrEqual(3);
    expect(out).toMatch(/done in/);
  });
});
