import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { request } from "../src/model/index.ts";
import { RedisQueue } from "../src/queue/redis/index.ts";
import { html, startServer, type TestServer } from "./helpers/http-server.ts";
import { deleteNamespace, redisTestConfig, requireRedis } from "./helpers/redis.ts";
import { ROOT, waitFor, writeConfig } from "./helpers/worker-process.ts";

beforeAll(async () => {
  await requireRedis("worker memory");
});

let server: TestServer | undefined;
let name = "";
afterEach(async () => {
  await server?.close();
  if (name) await deleteNamespace(name);
});

function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) / 1024;
}

describe("worker memory", () => {
  it("stays flat while it consumes a stream of 200 000 queued requests (sampled during consumption)", async () => {
    server = await startServer((_req, res) => html(res, "<p>ok</p>"));
    const config = redisTestConfig();
    name = config.name;
    const queue = await RedisQueue.connect(config);
    const total = 200_000;
    for (let i = 0; i < total; i += 2000) {
      await queue.publish(
        "request",
        Array.from({ length: 2000 }, (_, j) => ({ message: request({ url: `${server!.url}/p/${i + j}`, module: "memtest" }) })),
      );
    }
    await queue.close();

    const dir = await mkdtemp(join(tmpdir(), "mocra-mem-"));
    await writeFile(
      join(dir, "memtest.ts"),
      `import { defineModule } from ${JSON.stringify(join(ROOT, "src/modules/define.ts"))};
export default defineModule({ name: "memtest", start: () => [], parse() {} });\n`,
    );
    const cfg = await writeConfig(`name = "${name}"
[crawler]
module_paths = [${JSON.stringify(dir)}]
task_concurrency = 64
obey_robots_txt = false
[download_config]
# the requests are queued by hand (no start URL names the host) and the server is on loopback
allow_private_hosts = ["127.0.0.1"]
[output]
sink = "jsonl"
path = ${JSON.stringify(join(dir, "out"))}
`);
    // node --import tsx directly, so the pid sampled is the worker itself
    const child = spawn(process.execPath, ["--import", "tsx", "src/cli.ts", "start-worker", "--no-supervisor", "--config", cfg], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    try {
      await waitFor("the worker to join", async () => out.includes("joined"), 60_000, 50);
      // sampled while the worker consumes (200 000 entries outlast the window by far): RSS
      // against time and pages served; the first 15 s are V8 warming up its heap
      const samples: { at: number; served: number; rss: number }[] = [];
      const served = () => [...server!.hits.values()].reduce((a, b) => a + b, 0);
      const started = Date.now();
      // stop at 80 % consumed, so even a fast machine is still consuming at the last sample
      while (Date.now() - started < 60_000 && (samples.at(-1)?.served ?? 0) < total * 0.8) {
        await new Promise((r) => setTimeout(r, 500));
        samples.push({ at: Date.now() - started, served: served(), rss: rssMb(child.pid!) });
      }
      const steady = samples.filter((x) => x.at >= 15_000);
      const q = Math.floor(steady.length / 4);
      const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
      const early = steady.slice(0, q);
      const late = steady.slice(-q);
      const earlyRss = median(early.map((x) => x.rss));
      const lateRss = median(late.map((x) => x.rss));
      const pagesBetween = late[0].served - early[early.length - 1].served;
      const peak = Math.max(...samples.map((x) => x.rss));
      const total_ = samples[samples.length - 1].served;
      console.log(
        `worker RSS while consuming ${total} queued: ${total_} pages in ${(samples[samples.length - 1].at / 1000).toFixed(0)} s; first-quarter median ${earlyRss.toFixed(0)} MB, last-quarter median ${lateRss.toFixed(0)} MB over ${pagesBetween} pages between them, peak ${peak.toFixed(0)} MB; samples ${samples.map((x) => x.rss.toFixed(0)).join(" ")}`,
      );
      // still consuming at the last sample, and during the whole steady window
      expect(total_).toBeLessThan(total);
      expect(late[late.length - 1].served - late[0].served).toBeGreaterThan(1000);
      expect(pagesBetween).toBeGreaterThan(2000);
      expect(peak).toBeLessThan(350);
      expect(lateRss - earlyRss).toBeLessThan(40); // flat: no growth with pages crawled
      // the summary says what a JSONL sink guarantees under several workers
      child.kill("SIGTERM");
      expect(await exited).toBe(0);
      expect(out).toContain("at-least-once");
    } finally {
      child.kill("SIGKILL");
    }
  }, 200_000);
});
