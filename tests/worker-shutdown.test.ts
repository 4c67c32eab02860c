// start-worker whose in-flight work outlasts shutdown_timeout_secs: one SIGTERM still ends it.
import { afterEach, describe, expect, it } from "vitest";
import { startServer, type TestServer } from "./helpers/http-server.ts";
import { deleteNamespace, requireRedis, uniqueName } from "./helpers/redis.ts";
import { runCli, startWorker, waitFor, type WorkerProcess, writeConfig } from "./helpers/worker-process.ts";

const hasRedis = await requireRedis("worker-shutdown");
let server: TestServer | undefined;
let worker: WorkerProcess | undefined;
let name = "";

afterEach(async () => {
  if (worker && worker.child.exitCode === null) worker.child.kill("SIGKILL");
  await server?.close();
  if (name) await deleteNamespace(name);
  server = worker = undefined;
});

describe.skipIf(!hasRedis)("start-worker shutdown", () => {
  it("exits non-zero after shutdown_timeout_secs when a page never finishes, saying what stays pending", async () => {
    let hung = 0;
    server = await startServer((req, res) => {
      if (req.url === "/robots.txt") return void res.writeHead(404).end();
      hung++; // never answered
    });
    name = uniqueName();
    const cfg = await writeConfig(
      `name = "${name}"\n[crawler]\nshutdown_timeout_secs = 1\n[modules.demo_shop]\nstart_url = "${server.url}/list/0"\n`,
    );
    worker = await startWorker(cfg);
    expect((await runCli(["submit", "demo_shop", "--config", cfg])).code).toBe(0);
    await waitFor("the page to hang", async () => hung > 0, 60_000, 50);
    const t0 = Date.now();
    worker.child.kill("SIGTERM");
    const code = await worker.exited;
    expect(code, worker.output()).toBe(1);
    expect(Date.now() - t0).toBeLessThan(20_000);
    expect(worker.output()).toMatch(/shutdown: in-flight work outlasted shutdown_timeout_secs \(1 s\); what it still held stays pending in Redis/);
  }, 90_000);
});
