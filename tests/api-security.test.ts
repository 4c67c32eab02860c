// Issue 23, the API side: without the key the API shows counts only (no dead-letter payloads,
// module headers or reasons); a Host that is not this API's (DNS rebinding) is refused; a body
// over [api] max_body_bytes is refused with 413 without being read whole.
import { request as httpRequest } from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import type { Config } from "../src/config/index.ts";
import { defineModule } from "../src/index.ts";
import { type ApiCrawl, crawlWithApi } from "./helpers/api.ts";
import { cleanup, testConfig } from "./helpers/crawl.ts";
import { html, startServer, type TestServer } from "./helpers/http-server.ts";
import { freePort } from "./helpers/redis.ts";

let server: TestServer | undefined;
let run: ApiCrawl | undefined;
let config: Config | undefined;

afterEach(async () => {
  await run?.close();
  await server?.close();
  if (config) await cleanup(config);
  run = server = config = undefined;
});

/** A crawl whose one page fails to parse: its Response (request headers included) is dead-lettered. */
async function crawlWithDeadLetter(): Promise<void> {
  server = await startServer((_req, res) => html(res, "<h1>x</h1>"));
  config = await testConfig();
  config.api.port = await freePort();
  config.api.apiKey = "k3y";
  config.api.maxBodyBytes = 4096;
  const mod = defineModule({
    name: "secret_headers",
    settings: { headers: { authorization: "Bearer s3cret-token" } },
    start: () => [`${server!.url}/private?token=abc`],
    parse() {
      throw new Error("parse failed");
    },
  });
  run = await crawlWithApi(config, [mod]);
  await run.done;
}

/** A raw HTTP request (fetch may not set Host), answering status and body. */
function raw(base: string, path: string, init: { method?: string; headers?: Record<string, string>; body?: (write: (chunk: Buffer) => boolean) => Promise<void> }): Promise<{ status: number; body: string }> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: u.hostname, port: u.port, path, method: init.method ?? "GET", headers: init.headers }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (text += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on("error", (err) => ((err as NodeJS.ErrnoException).code === "EPIPE" || (err as NodeJS.ErrnoException).code === "ECONNRESET" ? undefined : reject(err)));
    if (!init.body) req.end();
    else void init.body((c) => req.write(c)).then(() => req.end(), () => req.end());
  });
}

describe("the API without its key", () => {
  it("/observability/engine carries counts, not dead-letter payloads, headers or reasons; with the key it lists them", async () => {
    await crawlWithDeadLetter();
    const open = await (await fetch(`${run!.base}/observability/engine`)).text();
    const snap = JSON.parse(open) as { dead_letters: unknown[]; dead_letters_hidden: boolean; queues: Array<{ dead?: number }> };
    expect(snap.dead_letters).toEqual([]);
    expect(snap.dead_letters_hidden).toBe(true);
    expect(snap.queues.reduce((n, q) => n + (q.dead ?? 0), 0)).toBe(1); // the count is there
    expect(open).not.toContain("s3cret-token");
    expect(open.toLowerCase()).not.toContain("authorization");
    expect(open).not.toContain("parse failed");
    expect(open).not.toContain("token=abc");

    const keyed = (await (await fetch(`${run!.base}/observability/engine`, { headers: { "x-api-key": "k3y" } })).json()) as { dead_letters: Array<{ reason: string }> };
    expect(keyed.dead_letters).toHaveLength(1);
    expect(keyed.dead_letters[0]!.reason).toContain("parse failed");
  });

  it("a request whose Host is not this API's address (DNS rebinding) is refused; IP, localhost and allowed names pass", async () => {
    await crawlWithDeadLetter();
    const port = new URL(run!.base).port;
    for (const host of [`evil.example:${port}`, "rebind.attacker.test"]) {
      const res = await raw(run!.base, "/observability/engine", { headers: { host } });
      expect(res.status, host).toBe(403);
      expect(res.body).toMatch(/allowed_hosts/);
    }
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`]) {
      expect((await raw(run!.base, "/health", { headers: { host } })).status, host).toBe(200);
    }
  });

  it("a body over max_body_bytes gets 413, declared or streamed, and is not read whole", async () => {
    await crawlWithDeadLetter();
    const big = await raw(run!.base, "/start_work", {
      method: "POST",
      headers: { "x-api-key": "k3y", "content-type": "application/json", "content-length": String(8192) },
      body: async (write) => void write(Buffer.alloc(8192, 0x20)),
    });
    expect(big.status).toBe(413);
    expect(big.body).toMatch(/max_body_bytes \(4096 bytes\)/);
    // chunked, no length: 64 MB offered, refused once past the limit (the writer stops at the response)
    let sent = 0;
    const streamed = await raw(run!.base, "/start_work", {
      method: "POST",
      headers: { "x-api-key": "k3y", "content-type": "application/json", "transfer-encoding": "chunked" },
      body: async (write) => {
        const chunk = Buffer.alloc(64 * 1024, 0x20);
        for (let i = 0; i < 1024 && sent >= 0; i++) {
          sent += chunk.length;
          if (!write(chunk)) await new Promise((r) => setTimeout(r, 1));
        }
      },
    });
    expect(streamed.status).toBe(413);
    // a small body still works
    const ok = await fetch(`${run!.base}/start_work`, { method: "POST", headers: { "x-api-key": "k3y" }, body: JSON.stringify({ module: "secret_headers" }) });
    expect(ok.status).toBe(200);
  });
});
