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
  it("stays flat while consuming a stream of 200 000 queued requests", async () => {
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
[output]
sink = "jsonl"
path = ${JSON.stringify(join(dir, "out"))}
`);
    // node --import tsx directly, so the pid sampled is the worker itself
    const child = spawn(process.execPath, ["--import", "tsx", "src/cli.ts", "start-worker", "--config", cfg], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
    try {
      await waitFor("the worker to join", async () => out.includes("joined"), 30_000, 50);
      const samples: number[] = [];
      const started = Date.now();
      while (Date.now() - started < 30_000) {
        await new Promise((r) => setTimeout(r, 500));
        samples.push(rssMb(child.pid!));
      }
      const served = [...server.hits.values()].reduce((a, b) => a + b, 0);
      const warm = samples.slice(20); // after ten seconds of warm-up (V8 grows its heap lazily at first)
      const first = warm[0];
      const peak = Math.max(...warm);
      const last = warm[warm.length - 1];
      console.log(`worker RSS over 30 s with ${total} queued: first ${first.toFixed(0)} MB, peak ${peak.toFixed(0)} MB, last ${last.toFixed(0)} MB; ${served} pages served; samples ${samples.map((s) => s.toFixed(0)).join(" ")}`);
      expect(served).toBeGreaterThan(1000);
      expect(peak).toBeLessThan(350);
      expect(peak - Math.min(...warm)).toBeLessThan(50); // flat: no growth with pages crawled or queue length
    } finally {
      child.kill("SIGKILL");
    }
  }, 120_000);
});
