// tests/helpers/redis.ts: the real Redis for integration tests: reachability, a namespaced
// config per test, cleanup of a namespace's keys, and throwaway redis-server processes.

import { type ChildProcess, spawn } from "node:child_process";
import { createServer } from "node:net";
import { Redis } from "ioredis";
import { type Config, defaultConfig } from "../../src/config/index.ts";
import { itemStreamKey } from "../../src/storage/redis-sink.ts";

export const DEFAULT_TEST_REDIS_URL = "redis://127.0.0.1:6379";

/** host and port of a `redis://host:port` address. */
export function parseRedisUrl(url: string): { host: string; port: number } {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error(`MOCRA_TEST_REDIS_URL: not a URL: ${JSON.stringify(url)} (expected redis://host:port)`);
  }
  if (parsed.protocol !== "redis:") throw new Error(`MOCRA_TEST_REDIS_URL: expected redis://host:port, got ${JSON.stringify(url)}`);
  return { host: parsed.hostname || "127.0.0.1", port: Number(parsed.port || 6379) };
}

/**
 * The Redis of this test run: the one tests/setup/redis.ts found or started (it exports
 * MOCRA_TEST_REDIS_URL before any test file loads); 127.0.0.1:6379 outside vitest.
 */
const testRedis = parseRedisUrl(process.env.MOCRA_TEST_REDIS_URL || DEFAULT_TEST_REDIS_URL);
export const REDIS_HOST = testRedis.host;
export const REDIS_PORT = testRedis.port;

/** True when a Redis answers PING at host:port within `timeoutMs`. */
export async function redisReachable(port = REDIS_PORT, timeoutMs = 1000, host = REDIS_HOST): Promise<boolean> {
  const r = new Redis({ host, port, lazyConnect: true, connectTimeout: timeoutMs, retryStrategy: () => null, maxRetriesPerRequest: 0 });
  r.on("error", () => {});
  try {
    await r.connect();
    return (await r.ping()) === "PONG";
  } catch {
    return false;
  } finally {
    r.disconnect();
  }
}

/**
 * Makes sure the run's Redis answers; throws (failing the suite) when it does not. Never a
 * skip: the global setup has already started a redis-server if none was configured. Resolves
 * true, so older `const hasRedis = await requireRedis(...)` callers keep working.
 */
export async function requireRedis(suite: string): Promise<boolean> {
  if (await redisReachable()) return true;
  throw new Error(`${suite}: no Redis at ${REDIS_HOST}:${REDIS_PORT} (run the tests through vitest, whose global setup starts one, or set MOCRA_TEST_REDIS_URL)`);
}

/** A unique namespace for one test: t_<random>. */
export function uniqueName(): string {
  return `t_${Math.random().toString(36).slice(2, 10)}`;
}

/** A config for queue tests under a fresh namespace. */
export function redisTestConfig(patch: (c: Config) => void = () => {}, port = REDIS_PORT): Config {
  const c = defaultConfig();
  c.name = uniqueName();
  c.channelConfig.redis.redisHost = REDIS_HOST;
  c.channelConfig.redis.redisPort = port;
  c.channelConfig.redis.connectTimeoutMs = 2000;
  patch(c);
  return c;
}

/** Deletes every key whose name contains the namespace (the `{name:...}` stream keys included). */
export async function deleteNamespace(name: string, port = REDIS_PORT): Promise<number> {
  const r = new Redis({ host: REDIS_HOST, port, lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
  r.on("error", () => {});
  let deleted = 0;
  try {
    await r.connect();
    let cursor = "0";
    do {
      const [next, keys] = await r.scan(cursor, "MATCH", `*${name}*`, "COUNT", 1000);
      cursor = next;
      if (keys.length > 0) deleted += await r.unlink(...keys);
    } while (cursor !== "0");
  } catch {
    // server gone: nothing to clean
  } finally {
    r.disconnect();
  }
  return deleted;
}

/** A TCP port nobody listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** A redis-server without persistence on `port`, for outage tests; resolves once it answers. */
export async function startRedisServer(port: number): Promise<ChildProcess> {
  const child = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], {
    stdio: "ignore",
  });
  let spawnError: Error | undefined;
  child.once("error", (e) => (spawnError = e)); // e.g. ENOENT: redis-server not installed
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (spawnError) throw new Error(`redis-server could not be started: ${spawnError.message}`);
    if (child.exitCode !== null) throw new Error(`redis-server on port ${port} exited with ${child.exitCode}`);
    if (await redisReachable(port, 200, "127.0.0.1")) return child;
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill("SIGKILL");
  throw new Error(`redis-server on port ${port} did not answer within 10 s`);
}

/** Stops a throwaway server and waits for its exit. */
export async function stopRedisServer(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill("SIGKILL");
  await exited;
}

/** A plain client for poking at Redis directly in a test. */
export function rawClient(port = REDIS_PORT): Redis {
  const r = new Redis({ host: REDIS_HOST, port, maxRetriesPerRequest: 1 });
  r.on("error", () => {});
  return r;
}

/** The items the Redis sink holds for `module` under `name`: how many entries, and their distinct `url`s. */
export async function sinkItems(name: string, module: string): Promise<{ total: number; urls: Set<string> }> {
  const r = rawClient();
  try {
    const entries = await r.xrange(itemStreamKey(name, module), "-", "+");
    return { total: entries.length, urls: new Set(entries.map(([, f]) => String(JSON.parse(f[f.indexOf("item") + 1]).url))) };
  } finally {
    r.disconnect();
  }
}
