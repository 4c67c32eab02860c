// Responses an HTTP parser refuses, and the dead letters they leave, as a user meets them:
// a real run-standalone process against a raw TCP server on 127.0.0.1 that answers one page with
// 10 000 headers and one with a malformed status line; and `dlq list` for every topic.
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { errorTaskModel, parserTaskModel, request, response, taskModel, TOPICS, type Topic, URL_HEADER } from "../src/model/index.ts";
import { RedisQueue } from "../src/queue/redis/index.ts";
import { deleteNamespace, REDIS_HOST, REDIS_PORT, redisTestConfig, requireRedis } from "./helpers/redis.ts";
import { runCliProcess } from "./helpers/standalone-process.ts";
import { runCli } from "./helpers/worker-process.ts";

let dir: string | undefined;
let server: Server | undefined;
let namespace: string | undefined;

afterEach(async () => {
  if (server) await new Promise((r) => server!.close(r));
  if (dir) await rm(dir, { recursive: true, force: true });
  if (namespace) await deleteNamespace(namespace);
  server = dir = namespace = undefined;
});

const PAGE = (body: string, extra = "") => `HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${extra}connection: close\r\n\r\n${body}`;

/** `/` links to /p/0../p/9; /p/3 answers with 10 000 headers, /p/4 with a malformed status line. */
async function hostileServer(hits: Map<string, number>): Promise<string> {
  const sockets = new Set<Socket>();
  server = createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    let head = "";
    socket.on("data", (d) => {
      head += d.toString("latin1");
      if (!head.includes("\r\n\r\n")) return;
      const path = head.split(" ")[1] ?? "/";
      hits.set(path, (hits.get(path) ?? 0) + 1);
      let reply: string;
      if (path === "/") reply = PAGE(Array.from({ length: 10 }, (_, i) => `<a href="/p/${i}">${i}</a>`).join(""));
      else if (path === "/p/3") reply = PAGE("<h1>many</h1>", Array.from({ length: 10_000 }, (_, i) => `x-h${i}: ${i}\r\n`).join(""));
      else if (path === "/p/4") reply = PAGE("<h1>bad</h1>").replace("200 OK", "2x0 OK");
      else if (path.startsWith("/p/")) reply = PAGE("<h1>ok</h1>");
      else reply = "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
      socket.end(reply, "latin1");
    });
    socket.on("error", () => {});
  });
  server.on("close", () => {
    for (const s of sockets) s.destroy();
  });
  await new Promise<void>((r) => server!.listen(0, "127.0.0.1", r));
  const address = server.address() as { port: number };
  return `http://127.0.0.1:${address.port}`;
}

describe("a response the HTTP parser rejects", () => {
  it("fails that page at once (no retries as a network error) and never opens the host's circuit", async () => {
    const hits = new Map<string, number>();
    const url = await hostileServer(hits);
    dir = await mkdtemp(join(tmpdir(), "mocra-hostile-"));
    const config = join(dir, "config.toml");
    await writeFile(
      config,
      `name = "hostile_${process.pid}"\n[crawler]\nmodule_paths = ["tests/fixtures/faults"]\ntask_concurrency = 1\n` +
        // two parser rejections in a row would open the circuit if they counted as the host's failures
        `[download_config]\ncircuit_failures = 2\ncircuit_open_secs = 60\n` +
        `[output]\npath = ${JSON.stringify(join(dir, "out"))}\n[state]\ndir = ${JSON.stringify(join(dir, "state"))}\n` +
        `[modules.faulty_items]\nurl = ${JSON.stringify(url)}\n`,
    );
    const run = runCliProcess(["run-standalone", "--config", config, "--module", "faulty_items"]);
    const code = await run.exited;
    const out = run.output();
    expect(code, out).toBe(0);
    expect(hits.get("/p/3"), "10 000 headers: fetched once").toBe(1);
    expect(hits.get("/p/4"), "malformed: fetched once").toBe(1);
    expect(out).not.toMatch(/circuit/i);
    const dead = (await readFile(join(dir, "out", "dead_letters.jsonl"), "utf8")).split("\n").filter(Boolean).map((l) => JSON.parse(l) as { reason: string; url: string });
    expect(dead.map((d) => new URL(d.url).pathname).sort()).toEqual(["/p/3", "/p/4"]);
    for (const d of dead) expect(d.reason).toMatch(/rejected by the HTTP parser/);
    const items = (await readFile(join(dir, "out", "faulty_items.jsonl"), "utf8")).split("\n").filter(Boolean);
    expect(items).toHaveLength(8);
  }, 90_000);
});

describe("dlq list", () => {
  it("works for every topic (a task's module is a list)", async () => {
    if (!(await requireRedis("dlq list"))) return;
    const config = redisTestConfig();
    namespace = config.name;
    const queue = await RedisQueue.connect(config);
    const url = "http://127.0.0.1:9/page";
    try {
      await queue.publish("task", [{ message: taskModel({ module: ["shop_a", "shop_b"] }) }]);
      const [task] = await queue.read("task", 1, 0);
      await queue.deadLetter(task, "task failed: start() threw");
      const accountTask = taskModel({ module: ["shop_a"] });
      const messages: Partial<Record<Topic, unknown>> = {
        request: request({ url, module: "shop_a" }),
        response: response({ module: "shop_a", headers: [[URL_HEADER, url]] }),
        parser_task: parserTaskModel({ accountTask }),
        error_task: errorTaskModel({ accountTask, errorMsg: "boom" }),
      };
      for (const [topic, message] of Object.entries(messages)) {
        await queue.deadLetterMessage(topic as Topic, message as never, `${topic} failed`, "0-1");
      }
    } finally {
      await queue.close();
    }
    dir = await mkdtemp(join(tmpdir(), "mocra-dlq-"));
    const file = join(dir, "config.toml");
    await writeFile(file, `name = "${config.name}"\n[channel_config.redis]\nredis_host = "${REDIS_HOST}"\nredis_port = ${REDIS_PORT}\n`);
    const runs = await Promise.all(TOPICS.map((topic) => runCli(["dlq", "list", "--topic", topic, "--config", file])));
    for (const [i, topic] of TOPICS.entries()) {
      const { code, out } = runs[i];
      expect(code, `${topic}: ${out}`).toBe(0);
      expect(out).toMatch(topic === "task" ? /task failed: start\(\) threw .*module shop_a,shop_b/ : new RegExp(`${topic} failed `));
    }
  }, 180_000);
});
