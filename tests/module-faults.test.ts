// Module code that never yields (a CPU loop in parse), never settles, or follows a million links:
// real run-standalone / start-worker processes against a local server. Each case stalled, hung
// or exhausted the heap before the watchdog, the parse deadline and max_follows_per_page.
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { taskModel } from "../src/model/index.ts";
import { RedisQueue } from "../src/queue/redis/index.ts";
import { descendants } from "./bench/common.ts";
import { html, startServer, type TestServer } from "./helpers/http-server.ts";
import { deleteNamespace, redisTestConfig, requireRedis, sinkItems } from "./helpers/redis.ts";
import { ROOT, withTestRedis } from "./helpers/worker-process.ts";

const PAGES = 12;
let server: TestServer | undefined;
const children: ChildProcess[] = [];

afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  await server?.close();
  server = undefined;
});

/** `/` links to /p/0 … /p/11, `/bad` and `/hang`; each /p/N is an item. */
async function site(): Promise<TestServer> {
  return startServer((req, res) => {
    if (req.url === "/") html(res, [...Array.from({ length: PAGES }, (_, i) => `<a href="/p/${i}">${i}</a>`), `<a href="/bad">bad</a><a href="/hang">hang</a>`].join(""));
    else html(res, `<h1>${req.url}</h1>`);
  });
}

/** A module whose parse of `/bad` does `bad` (JS statements) and of `/hang` never settles; every other page emits its URL. */
async function moduleDir(bad: string, extra = ""): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "mocra-faults-"));
  await writeFile(
    join(dir, "faulty.ts"),
    `import { defineModule } from ${JSON.stringify(join(ROOT, "src/modules/define.ts"))};
export default defineModule({
  name: "faulty",
  settings: { parseTimeoutSecs: 2, url: "" },
  start: (ctx) => [String(ctx.settings.url) + "/"],
  async parse(page, ctx) {
    if (page.url.endsWith("/bad")) { ${bad} }
    if (page.url.endsWith("/hang")) await new Promise(() => {});
    if (page.url.endsWith("/")) ctx.follow(page.links("a"));
    else ctx.emit({ url: page.url });
  },${extra}
});\n`,
  );
  return dir;
}

function baseToml(dir: string, url: string, extra = ""): string {
  return (
    `name = "faults_${process.pid}_${Math.random().toString(36).slice(2, 8)}"\n[crawler]\nmodule_paths = [${JSON.stringify(dir)}]\nobey_robots_txt = false\n` +
    `request_max_retries = 2\nretry_base_delay_ms = 50\nretry_max_delay_ms = 100\nprogress_interval_secs = 1\n${extra}\n` +
    `[output]\npath = ${JSON.stringify(join(dir, "out"))}\n[state]\ndir = ${JSON.stringify(join(dir, "state"))}\n[modules.faulty]\nurl = ${JSON.stringify(url)}\n`
  );
}

interface Run {
  child: ChildProcess;
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function cli(args: string[], runtime: "node" | "deno" = "node"): Run {
  const child =
    runtime === "deno"
      ? spawn(join(ROOT, "node_modules/deno/deno"), ["run", "-A", "src/cli.ts", ...args], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] })
      : spawn(process.execPath, ["--import", "tsx", "src/cli.ts", ...args], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  children.push(child);
  let out = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on("exit", (code, signal) => resolve({ code, signal })));
  return { child, output: () => out, exited };
}

async function items(dir: string): Promise<string[]> {
  const text = await readFile(join(dir, "out", "faulty.jsonl"), "utf8").catch(() => "");
  return text
    .split("\n")
    .filter(Boolean)
    .map((l) => (JSON.parse(l) as { url: string }).url)
    .sort();
}

function deadLetters(dir: string): { reason: string }[] {
  try {
    return readFileSync(join(dir, "out", "dead_letters.jsonl"), "utf8")
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { reason: string });
  } catch {
    return [];
  }
}

async function withTimeout<T>(p: Promise<T>, ms: number, what: () => string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const t = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out: ${what()}`)), ms)));
  try {
    return await Promise.race([p, t]);
  } finally {
    clearTimeout(timer);
  }
}

describe("module faults (standalone)", () => {
  it("a parse that never settles fails with 'parse timed out after N s'; one that loops on the CPU is ended by the watchdog, counted per restart; both dead-lettered after request_max_retries; every other page is stored", async () => {
    server = await site();
    const dir = await moduleDir("for (;;) {}");
    await writeFile(join(dir, "config.toml"), baseToml(dir, server.url));
    const run = cli(["run-standalone", "--config", join(dir, "config.toml"), "--module", "faulty"]);
    const { code } = await withTimeout(run.exited, 100_000, run.output);
    expect(code, run.output()).toBe(0);
    expect(run.output()).toMatch(/watchdog: parse of http:\/\/127\.0\.0\.1:\d+\/bad \(module faulty\) blocked the process/);
    expect((await items(dir)).length, run.output()).toBe(PAGES);
    const dead = deadLetters(dir).map((d) => d.reason).sort();
    expect(dead.length, run.output()).toBe(2);
    expect(dead[0]).toMatch(/^parse timed out after 2 s \(after 2 attempts\)$/);
    expect(dead[1]).toMatch(/^parse timed out after 2 s: it blocked the process.*\(after 2 attempts\)/);
    // request_max_retries = 2: the page was parsed twice, so the watchdog fired twice
    expect(run.output().match(/watchdog: /g)?.length).toBe(2);
  }, 120_000);

  it("SIGTERM during a looping parse ends the process within shutdown_timeout_secs", async () => {
    server = await site();
    const dir = await moduleDir(`console.error("looping on the CPU"); for (;;) {}`);
    await writeFile(join(dir, "config.toml"), baseToml(dir, server.url, "shutdown_timeout_secs = 3"));
    // a long parse deadline: only the shutdown bound can end the loop in time
    await writeFile(join(dir, "faulty.ts"), (await readFile(join(dir, "faulty.ts"), "utf8")).replace("parseTimeoutSecs: 2", "parseTimeoutSecs: 600"));
    const run = cli(["run-standalone", "--config", join(dir, "config.toml"), "--module", "faulty"]);
    const deadline = Date.now() + 60_000;
    while (!run.output().includes("looping on the CPU")) {
      if (Date.now() > deadline || run.child.exitCode !== null) throw new Error(run.output());
      await new Promise((r) => setTimeout(r, 20));
    }
    await new Promise((r) => setTimeout(r, 500));
    expect(run.child.exitCode, run.output()).toBeNull();
    const signalled = Date.now();
    run.child.kill("SIGTERM");
    // before: SIGTERM had no effect, only SIGKILL ended the process
    const { code } = await withTimeout(run.exited, 30_000, run.output);
    const took = (Date.now() - signalled) / 1000;
    expect(code, run.output()).not.toBe(0);
    expect(run.output()).toMatch(/stopped: the process was ended while module code blocked it/);
    // 3 s of shutdown timeout (counted from the start of the loop) plus the watchdog's look every 0.2 s
    expect(took, run.output()).toBeLessThan(10);
  }, 90_000);
});

/** Peak RSS (VmHWM) of a live process, MB. */
function peakRssMb(pid: number): number {
  try {
    return Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0) / 1024;
  } catch {
    return 0;
  }
}

describe("bounded fan-out", () => {
  it("a page following 1 000 000 URLs (a generator) makes max_follows_per_page requests and counts the rest as dropped, in bounded memory", async () => {
    server = await startServer((req, res) => html(res, req.url === "/" ? "<p>index</p>" : `<h1>${req.url}</h1>`));
    const dir = await mkdtemp(join(tmpdir(), "mocra-fanout-"));
    await writeFile(
      join(dir, "fanout.ts"),
      `import { defineModule } from ${JSON.stringify(join(ROOT, "src/modules/define.ts"))};
export default defineModule({
  name: "fanout",
  settings: { url: "" },
  start: (ctx) => [String(ctx.settings.url) + "/"],
  parse(page, ctx) {
    if (!page.url.endsWith("/")) return ctx.emit({ url: page.url });
    let pulled = 0;
    const base = page.url;
    ctx.follow((function* () { for (let i = 0; i < 1_000_000; i++) { pulled++; yield base + "p/" + i; } })());
    ctx.emit({ url: page.url, pulled });
  },
});\n`,
    );
    await writeFile(
      join(dir, "config.toml"),
      `name = "fanout"\n[crawler]\nmodule_paths = [${JSON.stringify(dir)}]\nobey_robots_txt = false\ntask_concurrency = 32\n` +
        `[output]\npath = ${JSON.stringify(join(dir, "out"))}\n[state]\ndir = ${JSON.stringify(join(dir, "state"))}\nsegment_mb = 1\n` +
        `[modules.fanout]\nurl = ${JSON.stringify(server.url)}\nmax_follows_per_page = 200\n`,
    );
    const run = cli(["run-standalone", "--config", join(dir, "config.toml"), "--module", "fanout"]);
    let peak = 0;
    // the supervisor and the crawl process under it
    const sampler = setInterval(() => (peak = Math.max(peak, ...[run.child.pid!, ...descendants(run.child.pid!)].map(peakRssMb))), 100);
    const { code } = await withTimeout(run.exited, 120_000, run.output).finally(() => clearInterval(sampler));
    expect(code, run.output()).toBe(0);
    const lines = (await readFile(join(dir, "out", "fanout.jsonl"), "utf8")).split("\n").filter(Boolean).map((l) => JSON.parse(l) as { url: string; pulled?: number });
    expect(lines.length).toBe(201);
    // the generator was consumed to the end only to count (nothing kept), not turned into requests
    expect(lines.find((l) => l.pulled !== undefined)?.pulled).toBe(1_000_000);
    expect(run.output()).toMatch(/999800 over max_follows_per_page/);
    // before: 5.6 GB and heap exhaustion after 3 min; a generous bound for a loaded machine
    expect(peak, run.output()).toBeLessThan(700);
  }, 150_000);
});

describe("module faults (distributed)", () => {
  it("a CPU-looping parse with two start-worker processes: each worker that takes it is ended and restarted, the entry is dead-lettered with its reason, every other page is stored", async () => {
    await requireRedis("module faults");
    server = await site();
    const dir = await moduleDir("for (;;) {}");
    const config = redisTestConfig((c) => {
      c.crawler.requestMaxRetries = 1;
    });
    const toml =
      baseToml(dir, server.url).replace("request_max_retries = 2", "request_max_retries = 1").replace(/^name = .*$/m, `name = "${config.name}"`).replace(/\[state\][^\n]*\n[^\n]*\n/, "") +
      `[channel_config.redis]\nclaim_min_idle = 3000\nclaim_interval = 500\n`;
    await writeFile(join(dir, "worker.toml"), withTestRedis(toml.replace(`[output]\npath`, `[output]\nsink = "redis"\npath`)));
    const workers = [cli(["start-worker", "--config", join(dir, "worker.toml")]), cli(["start-worker", "--config", join(dir, "worker.toml")])];
    const queue = await RedisQueue.connect(config);
    try {
      const deadline = Date.now() + 60_000;
      while (!workers.every((w) => /joined|started/.test(w.output()))) {
        if (Date.now() > deadline) throw new Error(workers.map((w) => w.output()).join("\n---\n"));
        await new Promise((r) => setTimeout(r, 100));
      }
      await queue.publish("task", [{ message: taskModel({ module: ["faulty"] }) }]);
      const all = () => workers.map((w) => w.output()).join("\n---\n");
      const until = Date.now() + 100_000;
      for (;;) {
        const stored = await sinkItems(config.name, "faulty");
        const dead = await queue.listDeadLetters("request", 10);
        if (stored.urls.size === PAGES && dead.length === 2) {
          const reasons = dead.map((d) => d.reason).sort();
          // (a bystander of the worker the watchdog ended is re-delivered: its attempts may count that)
          expect(reasons[0], reasons.join(" | ")).toMatch(/^parse timed out after 2 s( \(after \d+ attempts\))?$/);
          expect(reasons[1], reasons.join(" | ")).toMatch(/^parse timed out after 2 s: it blocked the process.*\(after 1 attempts\)/);
          break;
        }
        if (Date.now() > until) throw new Error(`stored ${stored.urls.size}, dead ${JSON.stringify(dead.map((d) => d.reason))}\n${all()}`);
        await new Promise((r) => setTimeout(r, 250));
      }
      // request_max_retries = 1: the worker that took it was ended once, the next claim dead-lettered it
      expect(all().match(/watchdog: /g)?.length, all()).toBe(1);
      for (const w of workers) w.child.kill("SIGTERM");
      // 0, or 130 when the signal finds a restarted worker still starting (before its handlers)
      for (const w of workers) expect([0, 130]).toContain((await withTimeout(w.exited, 30_000, all)).code);
    } finally {
      await queue.close();
      await deleteNamespace(config.name);
    }
  }, 180_000);
});
