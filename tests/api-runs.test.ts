// tests/api-runs.test.ts: the dashboard snapshot's decisions, over the Hono app: the badge state
// (idle, running, finished, paused), the fleet's figures summed over the runs, the chart history
// kept server-side, and a politeness key's configured rate when no event told one.
import { describe, expect, it } from "vitest";
import { createApi, type RunRow } from "../src/api/server.ts";
import { defaultConfig } from "../src/config/index.ts";
import { MemoryPauseFlag } from "../src/control/pause.ts";
import { EventBus } from "../src/events/bus.ts";
import { PRIORITIES, TOPICS } from "../src/model/index.ts";
import { EngineMetrics } from "../src/observe/metrics.ts";
import type { QueueStats } from "../src/queue/queue.ts";

function stats(inFlight = 0): QueueStats {
  const out = {} as QueueStats;
  for (const t of TOPICS) out[t] = { ready: Object.fromEntries(PRIORITIES.map((p) => [p, 0])) as QueueStats["task"]["ready"], inFlight: t === "request" ? inFlight : 0, delayed: 0, dead: 0 };
  return out;
}

const run = (state: string, pages: number, items: number): RunRow => ({ run_id: `r-${pages}`, state, pages, items, open: state === "running" ? 1 : 0, http_errors: 0, retries: 2, deferred: 0, dead_letters: 1 });

describe("dashboard snapshot", () => {
  it("badge, fleet over the runs, server-side history, configured rate", async () => {
    const bus = new EventBus();
    const metrics = new EngineMetrics(bus, { nodeId: "n" });
    const control = new MemoryPauseFlag();
    let inFlight = 0;
    let runs: RunRow[] = [];
    const app = createApi(defaultConfig().api, {
      name: "t",
      metrics,
      queueStats: async () => stats(inFlight),
      nodes: async () => [],
      listDeadLetters: async () => [],
      replayDeadLetters: async () => 0,
      submit: async () => "x",
      control,
      runs: async () => runs,
      configuredRate: (key) => (key === "shop.example" ? 30 : 0),
    });
    const snap = async () => (await (await app.fetch(new Request("http://127.0.0.1/observability/engine", { headers: { host: "127.0.0.1" } }))).json()) as {
      state: string;
      fleet: { pages: number; items: number; retries: number; deadLetters: number; source: string };
      history: Array<{ pages: number }>;
      domains: Array<{ key: string; rate: number }>;
    };
    expect((await snap()).state).toBe("idle");
    inFlight = 3;
    runs = [run("running", 10, 9)];
    await new Promise((r) => setTimeout(r, 1000)); // the reads are cached 900 ms
    let s = await snap();
    expect(s.state).toBe("running");
    expect(s.fleet).toMatchObject({ pages: 10, items: 9, retries: 2, deadLetters: 1, source: "runs" });
    inFlight = 0;
    runs = [run("finished", 25, 20), run("finished", 5, 5)];
    bus.emit({ type: "rate_limited", key: "shop.example", waitMs: 10 });
    await new Promise((r) => setTimeout(r, 1000));
    s = await snap();
    expect(s.state).toBe("finished");
    expect(s.fleet.pages).toBe(30);
    expect(s.history.map((h) => h.pages)).toEqual([0, 10, 30]); // one sample per look, kept by the server
    expect(s.domains).toEqual([expect.objectContaining({ key: "shop.example", rate: 30 })]);
    await control.pause();
    expect((await snap()).state).toBe("paused");
    metrics.stop();
  });
});
