// Log lines (levels, JSON lines, escaping), the escaping itself, and `status` at a glance.
import { describe, expect, it } from "vitest";
import { type CrawlStatus, formatStatus } from "../src/commands/status.ts";
import { EventBus } from "../src/events/bus.ts";
import { PRIORITIES, TOPICS } from "../src/model/index.ts";
import { Logger, logEvents } from "../src/observe/logger.ts";
import { runCli } from "./helpers/worker-process.ts";

describe("Logger", () => {
  const capture = (level: "debug" | "info" | "warn" | "error", format: "text" | "json" = "text") => {
    const lines: string[] = [];
    return { lines, logger: new Logger({ enabled: true, level, format }, (l) => lines.push(l)) };
  };

  it("prints at and above its level only", () => {
    const { lines, logger } = capture("warn");
    logger.debug("d");
    logger.info("i");
    logger.warn("w");
    logger.error("e");
    expect(lines).toEqual(["warning: w\n", "error: e\n"]);
  });

  it("enabled = false prints no log line, only what a run must print", () => {
    const lines: string[] = [];
    const logger = new Logger({ enabled: false, level: "debug", format: "text" }, (l) => lines.push(l));
    logger.error("e");
    logger.print("done in 1.0 s");
    expect(lines).toEqual(["done in 1.0 s\n"]);
  });

  it("writes JSON lines with time, level, message and fields; control characters stay escaped", () => {
    const { lines, logger } = capture("info", "json");
    logger.info("dead letter \u001b[2J", { url: "http://x/\u001b]0;t\u0007" });
    expect(lines).toHaveLength(1);
    expect(lines[0]).not.toMatch(/[\u0000-\u0009\u000b-\u001f]/);
    const row = JSON.parse(lines[0]!) as Record<string, string>;
    expect(row).toMatchObject({ level: "info", msg: "dead letter \u001b[2J", url: "http://x/\u001b]0;t\u0007" });
    expect(Number.isNaN(Date.parse(row.time!))).toBe(false);
  });

  it("turns events into lines: a dead letter at info, page traffic only at debug", () => {
    const bus = new EventBus();
    const info = capture("info");
    const debug = capture("debug");
    const stops = [logEvents(bus, info.logger), logEvents(bus, debug.logger)];
    bus.emit({ type: "request_sent", url: "http://h/a", module: "m", attempt: 1 });
    bus.emit({ type: "dead_lettered", topic: "request", reason: "HTTP 500 \u001b[31m(after 3 attempts)", url: "http://h/b\r\nforged line" });
    bus.emit({ type: "redis_unreachable", endpoint: "127.0.0.1:6390", reason: "connect ECONNREFUSED" });
    bus.emit({ type: "redis_reconnected", endpoint: "127.0.0.1:6390", downMs: 2500 });
    for (const s of stops) s();
    expect(info.lines).toEqual([
      "dead letter (request): HTTP 500 \\u001b[31m(after 3 attempts) url=http://h/b\\u000d\\u000aforged line\n",
      "warning: Redis at 127.0.0.1:6390 unreachable (connect ECONNREFUSED): consumption paused, reconnecting\n",
      "Redis at 127.0.0.1:6390 reachable again after 2.5 s\n",
    ]);
    expect(debug.lines[0]).toBe("debug: GET http://h/a module=m attempt=1\n");
    expect(debug.lines).toHaveLength(4);
  });

  it("--log-level takes debug, info, warn or error: anything else is one clear line and exit 2", async () => {
    const r = await runCli(["run-standalone", "--log-level", "loud"]);
    expect(r.code).toBe(2);
    expect(r.out).toMatch(/^run-standalone: --log-level must be one of debug, info, warn, error, got "loud"$/m);
    expect(r.out).not.toMatch(/\n\s+at /); // no stack trace
  });
});

function emptyStatus(): CrawlStatus {
  const topics = {} as CrawlStatus["topics"];
  for (const t of TOPICS) {
    topics[t] = {
      delayed: 0,
      priorities: Object.fromEntries(PRIORITIES.map((p) => [p, { length: 0, waiting: 0, pending: 0, oldestIdleMs: 0, dead: 0 }])) as CrawlStatus["topics"]["task"]["priorities"],
    };
  }
  return { name: "shop", topics, workers: [], items: {}, paused: { all: false, modules: [] }, finished: true, budgets: [], leader: null, runs: [] };
}

describe("status at a glance", () => {
  it("hides all-zero rows unless asked, counts only undelivered entries as waiting, and says whether the run is finished", () => {
    const s = emptyStatus();
    expect(formatStatus(s)).toMatch(/^crawl shop: finished: nothing waiting, in flight or delayed\n\nqueues: all empty/);
    s.finished = false;
    s.topics.request.priorities.normal = { length: 5000, waiting: 120, pending: 8, oldestIdleMs: 1500, dead: 0 };
    s.topics.request.delayed = 3;
    s.items = { books: 4200 };
    const now = Math.floor(Date.now() / 1000);
    s.workers = [{ id: "0123456789abcdef", ip: "10.0.0.2", hostname: "crawl-1\u001b[31m", last_heartbeat: now - 4, version: "0.1.0", pid: 4242, roles: ["task", "download", "parse"], started_at: now - 300, pages: 917 }];
    const text = formatStatus(s);
    expect(text).toContain("crawl shop: running: 120 waiting, 8 in flight, 3 delayed");
    const rows = text.split("\n").filter((l) => /^(task|request|response|parser_task|error_task)\s/.test(l));
    expect(rows).toHaveLength(2); // request high (its delayed retries) and request normal; the other 13 are all zero
    expect(rows[1]).toMatch(/^request\s+normal\s+120\s+8\s+1\.5s\s+0$/);
    expect(text).not.toContain("5000"); // the stream length counts consumed entries: only with --all
    expect(text).toMatch(/^books\s+4200$/m);
    expect(text).toMatch(/^01234567\s+crawl-1\\u001b\[31m\s+4242\s+task,download,parse\s+917\s+5m\s+[45]s ago$/m);
    const all = formatStatus(s, { all: true }).split("\n").filter((l) => /^(task|request|response|parser_task|error_task)\s/.test(l));
    expect(all).toHaveLength(15);
    expect(formatStatus(s, { all: true })).toMatch(/length/);
    s.paused = { all: true, modules: ["books"] };
    expect(formatStatus(s)).toMatch(/^crawl shop: PAUSED \(resume with: resume\)\npaused modules: books/);
  });
});
