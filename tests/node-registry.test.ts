import { hostname } from "node:os";
import type { Redis } from "ioredis";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { defaultConfig } from "../src/config/index.ts";
import { listNodes, NodeRegistry, nodeKey, nodesIndexKey } from "../src/observe/node-registry.ts";
import { deleteNamespace, rawClient, REDIS_HOST, REDIS_PORT, requireRedis, uniqueName } from "./helpers/redis.ts";

await requireRedis("node-registry tests");

describe("NodeRegistry", () => {
  const cleanups: Array<() => Promise<unknown>> = [];
  let redis: Redis;

  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });
  afterAll(() => redis?.disconnect());

  function namespace(): string {
    const name = uniqueName();
    cleanups.push(() => deleteNamespace(name));
    redis ??= rawClient();
    return name;
  }

  function registry(name: string, options: ConstructorParameters<typeof NodeRegistry>[2] = {}): NodeRegistry {
    const r = new NodeRegistry(redis, name, options);
    cleanups.push(() => r.stop().catch(() => {}));
    return r;
  }

  it("lists registered nodes in mocra's layout; a stopped node is gone at once", async () => {
    const name = namespace();
    let pages = 0;
    const a = registry(name, { roles: ["download", "parse"], pages: () => pages, version: "9.9.9" });
    const b = registry(name);
    await a.start();
    await b.start();

    const nodes = await listNodes(redis, name);
    expect(nodes.map((n) => n.id).sort()).toEqual([a.id, b.id].sort());

    // the row: mocra's five fields first, in mocra's order, then ours
    const raw = await redis.get(nodeKey(name, a.id));
    const row = JSON.parse(raw!);
    expect(Object.keys(row)).toEqual(["id", "ip", "hostname", "last_heartbeat", "version", "pid", "roles", "started_at", "pages"]);
    expect(row).toMatchObject({ id: a.id, hostname: hostname(), version: "9.9.9", pid: process.pid, roles: ["download", "parse"], pages: 0 });
    expect(typeof row.ip).toBe("string");
    expect(Math.abs(row.last_heartbeat - Date.now() / 1000)).toBeLessThan(5);
    const ttl = await redis.ttl(nodeKey(name, a.id));
    expect(ttl).toBeGreaterThan(25);
    expect(ttl).toBeLessThanOrEqual(30);
    expect(Number(await redis.zscore(nodesIndexKey(name), a.id))).toBe(row.last_heartbeat);
    expect(await redis.ttl(nodesIndexKey(name))).toBeGreaterThan(0);

    pages = 42;
    await a.heartbeat();
    expect(JSON.parse((await redis.get(nodeKey(name, a.id)))!).pages).toBe(42);

    await b.stop();
    expect((await listNodes(redis, name)).map((n) => n.id)).toEqual([a.id]);
    expect(await redis.exists(nodeKey(name, b.id))).toBe(0);
    expect(await redis.zscore(nodesIndexKey(name), b.id)).toBeNull();

    await a.stop();
    expect(await listNodes(redis, name)).toEqual([]);
  });

  it("start(config) opens its own connection to the cache Redis and closes it on stop", async () => {
    const name = namespace();
    const c = defaultConfig();
    c.name = name;
    c.channelConfig.redis.redisHost = REDIS_HOST;
    c.channelConfig.redis.redisPort = REDIS_PORT;
    const node = await NodeRegistry.start(c, { id: "worker-1", roles: ["task"] });
    expect((await listNodes(redis, name)).map((n) => [n.id, n.roles])).toEqual([["worker-1", ["task"]]]);
    await node.stop();
    expect(await listNodes(redis, name)).toEqual([]);
  });

  it("heartbeats keep a node listed; one whose heartbeat stopped drops out after its TTL", async () => {
    const name = namespace();
    const alive = registry(name, { ttlSecs: 1, intervalMs: 200 });
    const dead = registry(name, { ttlSecs: 1, intervalMs: 200 });
    await alive.start();
    await dead.heartbeat(); // one heartbeat, then silence (a crashed worker)
    expect((await listNodes(redis, name, { ttlSecs: 1 })).map((n) => n.id).sort()).toEqual([alive.id, dead.id].sort());

    await new Promise((r) => setTimeout(r, 2600));
    expect((await listNodes(redis, name, { ttlSecs: 1 })).map((n) => n.id)).toEqual([alive.id]);
    // pruned from the index as well, not just filtered out
    expect(await redis.zrange(nodesIndexKey(name), 0, "-1")).toEqual([alive.id]);
  });
});
