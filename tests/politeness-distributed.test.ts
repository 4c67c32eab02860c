// Two `start-worker` processes crawl one domain at 20 req/s through the shared Redis limiter:
// measured at the server, the total rate stays within ±10 % of 20 and the requests are evenly
// spaced; robots.txt is fetched once for both.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { gaps, type HostsServer, ratePerSec, startHostsServer, summary } from "./helpers/polite-servers.ts";
import { deleteNamespace, requireRedis, uniqueName } from "./helpers/redis.ts";
import { ROOT, runCli, startWorker, waitFor, type WorkerProcess, writeConfig } from "./helpers/worker-process.ts";

await requireRedis("politeness-distributed");

let server: HostsServer | undefined;
let workers: WorkerProcess[] = [];
let dir: string | undefined;
let name = "";
afterEach(async () => {
  for (const w of workers) if (w.child.exitCode === null) w.child.kill("SIGKILL");
  workers = [];
  await server?.close();
  server = undefined;
  if (dir) await rm(dir, { recursive: true, force: true });
  if (name) await deleteNamespace(name);
});

describe("politeness across worker processes", () => {
  it(
    "two start-worker processes at 20 req/s on one domain: rate within ±10 % at the server, gaps even",
    async () => {
      name = uniqueName();
      server = await startHostsServer(["127.0.0.1"], (req, res) => {
        if (req.url === "/robots.txt") return void res.writeHead(200, { "content-type": "text/plain" }).end("User-agent: *\nDisallow: /private/\n");
        res.writeHead(200, { "content-type": "text/html" }).end(`<h1>${req.url}</h1>`);
      });
      dir = await mkdtemp(join(tmpdir(), "mocra-polite-dist-"));
      const define = pathToFileURL(join(ROOT, "src/modules/define.ts")).href;
      await writeFile(
        join(dir, "polite_pages.ts"),
        `import { defineModule } from ${JSON.stringify(define)};
export default defineModule({
  name: "polite_pages",
  settings: { base: "" },
  start: (ctx) => [...Array.from({ length: 120 }, (_, i) => \`\${ctx.settings.base}/p/\${i}\`), \`\${ctx.settings.base}/private/x\`],
  parse() {},
});
`,
      );
      const cfg = await writeConfig(`name = "${name}"
[crawler]
task_concurrency = 16
module_paths = [${JSON.stringify(dir)}]
shutdown_timeout_secs = 5
[download_config]
rate_limit = 20
[output]
path = ${JSON.stringify(join(dir, "out"))}
[modules.polite_pages]
base = "${server.urls["127.0.0.1"]}"
`);
      workers = [await startWorker(cfg), await startWorker(cfg)];
      expect((await runCli(["submit", "polite_pages", "--config", cfg])).code).toBe(0);
      await waitFor("120 pages", async () => server!.hits.filter((h) => h.path.startsWith("/p/")).length >= 120, 60_000, 100);
      await new Promise((r) => setTimeout(r, 300));
      const times = server.hits.filter((h) => h.path.startsWith("/p/")).map((h) => h.at);
      const rate = ratePerSec(times);
      const list = gaps(times).sort((a, b) => a - b);
      const g = summary(list);
      const p10 = list[Math.floor(list.length * 0.1)];
      const p90 = list[Math.floor(list.length * 0.9)];
      console.log(
        `2 start-worker processes @ 20/s: ${times.length} requests, ${rate.toFixed(2)} req/s at the server; gaps min ${g.min.toFixed(1)} / p10 ${p10.toFixed(1)} / mean ${g.mean.toFixed(1)} / p90 ${p90.toFixed(1)} / max ${g.max.toFixed(1)} ms`,
      );
      expect(times).toHaveLength(120);
      expect(rate).toBeGreaterThan(18);
      expect(rate).toBeLessThan(22);
      expect(p10).toBeGreaterThan(35);
      expect(p90).toBeLessThan(65);
      expect(server.hits.filter((h) => h.path === "/robots.txt")).toHaveLength(1);
      expect(server.hits.filter((h) => h.path.startsWith("/private/"))).toHaveLength(0);
      for (const w of workers) w.child.kill("SIGTERM");
      expect(await Promise.all(workers.map((w) => w.exited))).toEqual([0, 0]);
    },
    120_000,
  );
});
