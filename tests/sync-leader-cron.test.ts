import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { parseConfig } from "../src/config/index.ts";
import { readStatus } from "../src/commands/status.ts";
import { ModuleRegistry } from "../src/modules/registry.ts";
import { RedisQueue } from "../src/queue/redis/index.ts";
import { schedulesOf } from "../src/modules/schedules.ts";
import { CronScheduler, parseCron, RedisTickProgress, tickOfRunId } from "../src/sync/cron.ts";
import { SOLE_LEADER } from "../src/sync/leader.ts";
import ticker from "./fixtures/modules/ticker.ts";
import { html, startServer, type TestServer } from "./helpers/http-server.ts";
import { deleteNamespace, rawClient, requireRedis, uniqueName } from "./helpers/redis.ts";
import { ROOT, runCli, waitFor, writeConfig } from "./helpers/worker-process.ts";

const hasRedis = await requireRedis("sync-leader-cron.test");

interface Proc {
  child: ChildProcess;
  id: string;
  runtime: "node" | "deno";
  out: () => string;
  exited: Promise<number | null>;
}
let procs: Proc[] = [];
let server: TestServer | undefined;
let name = "";
afterEach(async () => {
  for (const p of procs) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill("SIGKILL");
  procs = [];
  await server?.close();
  server = undefined;
  if (name) await deleteNamespace(name);
});

/** A start-worker process: node itself (not the tsx wrapper) or deno, so kill -9 hits the worker. */
async function worker(config: string, runtime: "node" | "deno" = "node"): Promise<Proc> {
  const args = ["src/cli.ts", "start-worker", "--config", config];
  const child =
    runtime === "deno"
      ? spawn(join(ROOT, "node_modules/deno/deno"), ["run", "-A", ...args], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] })
      : spawn(process.execPath, ["--import", "tsx", ...args], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
  await waitFor(`worker (${runtime}) joined`, async () => {
    if (child.exitCode !== null) throw new Error(`worker exited: ${out}`);
    return out.includes("joined");
  }, 60_000, 50);
  const id = /worker (\S+) \(/.exec(out)![1];
  const p = { child, id, runtime, out: () => out, exited };
  procs.push(p);
  return p;
}

function toml(extra: string): string {
  return `name = "${name}"
[crawler]
shutdown_timeout_secs = 5
progress_interval_secs = 60
module_paths = ["tests/fixtures/modules"]
[channel_config]
queue_codec = "json"
[channel_config.redis]
shards = 1
${extra}`;
}

async function leaderId(): Promise<string | null> {
  const r = rawClient();
  try {
    return await r.get(`${name}:leader:cron`);
  } finally {
    r.disconnect();
  }
}

describe.skipIf(!hasRedis)("leader election (<name>:leader:cron)", () => {
  it("three workers elect one leader; kill -9 of the leader → a new one within 2 × the lease; status shows it", async () => {
    name = uniqueName();
    const leaseSecs = 2;
    const cfg = await writeConfig(toml(`[scheduler]\nleader_lease_secs = ${leaseSecs}\n`));
    await Promise.all([worker(cfg), worker(cfg), worker(cfg)]);
    await waitFor("a leader", async () => (await leaderId()) !== null, 10_000, 50);
    const first = (await leaderId())!;
    expect(procs.map((p) => p.id)).toContain(first);
    const status = await readStatus(parseConfig(`name = "${name}"`, cfg));
    expect(status.leader).toMatchObject({ id: first });
    const firstTerm = status.leader!.term;

    const old = procs.find((p) => p.id === first)!;
    old.child.kill("SIGKILL");
    const t0 = Date.now();
    await waitFor("a new leader", async () => {
      const id = await leaderId();
      return id !== null && id !== first;
    }, 4 * leaseSecs * 1000, 20);
    const failoverMs = Date.now() - t0;
    console.log(`leader failover after kill -9: ${failoverMs} ms (lease ${leaseSecs * 1000} ms)`);
    expect(failoverMs).toBeLessThanOrEqual(2 * leaseSecs * 1000);

    const next = (await leaderId())!;
    const cli = await runCli(["status", "--config", cfg]);
    expect(cli.code).toBe(0);
    expect(cli.out).toMatch(new RegExp(`leader: ${next} \\(term ${firstTerm + 1},`));
  });
});

describe.skipIf(!hasRedis)("cron schedules on the leader", () => {
  it("two schedulers that both believe they lead (a stale leader) still submit each tick once", async () => {
    name = uniqueName();
    const config = parseConfig(`name = "${name}"\n[channel_config]\nqueue_codec = "json"\n[channel_config.redis]\nshards = 1\n`, "t.toml");
    const queue = await RedisQueue.connect(config);
    const r = rawClient();
    const registry = new ModuleRegistry({ ticker: { cron: "* * * * * *", url: "http://127.0.0.1:1" } }).register(ticker);
    const mk = () =>
      new CronScheduler({
        name,
        schedules: schedulesOf(registry),
        queue,
        leadership: SOLE_LEADER,
        progress: new RedisTickProgress(r, name),
        misfireToleranceMs: 10_000,
        concurrency: 4,
      }).start();
    try {
      const [a, b] = [mk(), mk()];
      await new Promise((res) => setTimeout(res, 4500));
      await Promise.all([a.stop(), b.stop()]);
      const ticks = (await r.xrange(`{${name}:task-normal}`, "-", "+")).map(([, f]) => tickOfRunId(String((JSON.parse(f[1]) as { run_id: string }).run_id)));
      expect(ticks.length).toBeGreaterThanOrEqual(3);
      expect(new Set(ticks).size).toBe(ticks.length);
    } finally {
      await queue.close();
      r.disconnect();
    }
  });

  it("every 2 s over ~20 s with three workers (one on Deno) and a leader kill: each tick submitted exactly once, the missed one late", async () => {
    name = uniqueName();
    const runs = new Map<string, number>();
    server = await startServer((req, res) => {
      if (req.url === "/robots.txt") return html(res, "", 404);
      const run = new URL(req.url!, "http://x").searchParams.get("run") ?? "";
      runs.set(run, (runs.get(run) ?? 0) + 1);
      html(res, "ok");
    });
    // a 4 s lease: the tick after the kill falls inside the dead leader's lease, so it is missed and made up
    const cfg = await writeConfig(
      toml(`[scheduler]\nleader_lease_secs = 4\nmisfire_tolerance_secs = 10\n[modules.ticker]\ncron = "*/2 * * * * *"\nurl = "${server.url}"\n`),
    );
    await Promise.all([worker(cfg), worker(cfg), worker(cfg, "deno")]);
    await waitFor("a leader", async () => (await leaderId()) !== null, 10_000, 50);
    const started = Date.now();

    const r = rawClient();
    const stream = `{${name}:task-normal}`;
    const tasks = async () =>
      (await r.xrange(stream, "-", "+")).map(([id, f]) => {
        const runId = String((JSON.parse(f[1]) as { run_id: string }).run_id);
        return { entryMs: Number(id.split("-")[0]), runId, tick: tickOfRunId(runId) };
      });
    try {
      // let three ticks pass, then kill the leader just after a tick
      await waitFor("three ticks", async () => (await tasks()).length >= 3, 20_000, 50);
      const before = (await tasks()).length;
      await waitFor("the next tick", async () => (await tasks()).length > before, 5_000, 10);
      const leader = await leaderId();
      const victim = procs.find((p) => p.id === leader)!;
      expect(victim).toBeDefined();
      victim.child.kill("SIGKILL");
      const killedAt = Date.now();
      await new Promise((res) => setTimeout(res, Math.max(0, 20_000 - (Date.now() - started))));
      const survivors = procs.filter((p) => p !== victim);
      for (const p of survivors) p.child.kill("SIGTERM");
      await Promise.all(survivors.map((p) => p.exited));

      const all = await tasks();
      const ticks = all.map((t) => t.tick).sort((a, b) => a - b);
      // exactly once: no run id twice; every 2 s tick between the first and the last is there
      expect(new Set(all.map((t) => t.runId)).size).toBe(all.length);
      for (const t of ticks) expect(parseCron("*/2 * * * * *").nextRun(new Date(t - 1))!.getTime()).toBe(t);
      for (let i = 1; i < ticks.length; i++) expect(ticks[i] - ticks[i - 1], `gap after tick ${i}`).toBe(2000);
      expect(ticks.length).toBeGreaterThanOrEqual(8);
      // the tick(s) during the failover were submitted late (entry time well after the tick), within the tolerance
      const late = all.filter((t) => t.entryMs - t.tick > 500);
      console.log(
        `ticks submitted: ${ticks.length} (killed leader on ${victim.runtime}); late: ${late.map((t) => `${t.entryMs - t.tick} ms`).join(", ")}; fetched runs: ${runs.size}`,
      );
      expect(late.length).toBeGreaterThanOrEqual(1);
      for (const t of late) {
        expect(t.tick).toBeGreaterThanOrEqual(killedAt - 2000);
        expect(t.entryMs - t.tick).toBeLessThan(10_000);
      }
      // the tasks were crawled: one fetch per run (a run of the killed worker may be left pending)
      expect(runs.size).toBeGreaterThanOrEqual(all.length - 2);
      for (const run of runs.keys()) expect(all.map((t) => t.runId)).toContain(run);
    } finally {
      r.disconnect();
    }
  });
});
