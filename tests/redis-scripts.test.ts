// ScriptSet (src/redis/scripts.ts), the one way the engine calls Lua: plain, binary and pipelined
// calls, and a script cache emptied under it (SCRIPT FLUSH, as after a Redis restart) is refilled
// without an error reaching the caller. On a redis-server of its own: flushing the scripts of the
// shared one would disturb other tests.
import { Buffer } from "node:buffer";
import type { ChildProcess } from "node:child_process";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ScriptSet } from "../src/redis/scripts.ts";
import { freePort, startRedisServer, stopRedisServer } from "./helpers/redis.ts";

const scripts = new ScriptSet("test", new URL("./fixtures/lua/", import.meta.url), { echo: "echo.lua" });

describe("ScriptSet", () => {
  let server: ChildProcess;
  let conn: Redis;
  beforeAll(async () => {
    const port = await freePort();
    server = await startRedisServer(port);
    conn = new Redis({ host: "127.0.0.1", port, lazyConnect: true });
    await conn.connect();
  });
  afterAll(async () => {
    conn?.disconnect();
    if (server) await stopRedisServer(server);
  });

  it("runs a script plainly, with binary replies, and in a pipeline, after SCRIPT FLUSH too", async () => {
    expect(await scripts.run(conn, "echo", ["k"], ["a"])).toEqual([1, "a"]);
    const bin = (await scripts.runBuffer(conn, "echo", ["k"], [Buffer.from([0xff, 0x00])])) as [number, Buffer];
    expect(bin[0]).toBe(2);
    expect([...bin[1]]).toEqual([0xff, 0x00]);
    await conn.script("FLUSH");
    expect(await scripts.run(conn, "echo", ["k"], ["b"])).toEqual([3, "b"]);
    await conn.script("FLUSH");
    const pipe = conn.pipeline();
    scripts.pipe(pipe, "echo", ["k"], ["c"]);
    scripts.pipe(pipe, "echo", ["k"], ["d"]);
    const results = await pipe.exec();
    expect(results).toEqual([
      [null, [4, "c"]],
      [null, [5, "d"]],
    ]);
    expect(await conn.get("k")).toBe("5");
  });
});
