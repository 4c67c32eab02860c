// tests/setup/redis.ts: vitest global setup. Every Redis test runs on every `npm test`: the
// Redis at MOCRA_TEST_REDIS_URL (default redis://127.0.0.1:6379) when it answers, else a
// redis-server started here on a free port for this run. Failing both, the run fails: a missing
// Redis is never a skip. The address chosen is exported as MOCRA_TEST_REDIS_URL, which the test
// workers and the worker processes they spawn inherit (tests/helpers/redis.ts reads it).

import type { ChildProcess } from "node:child_process";
import { DEFAULT_TEST_REDIS_URL, freePort, parseRedisUrl, redisReachable, startRedisServer, stopRedisServer } from "../helpers/redis.ts";

let started: ChildProcess | undefined;

export async function setup(): Promise<void> {
  const configured = process.env.MOCRA_TEST_REDIS_URL || DEFAULT_TEST_REDIS_URL;
  const { host, port } = parseRedisUrl(configured);
  if (await redisReachable(port, 1000, host)) {
    process.env.MOCRA_TEST_REDIS_URL = configured;
    return;
  }
  const own = await freePort();
  try {
    started = await startRedisServer(own);
  } catch (e) {
    throw new Error(
      `no Redis answers at ${configured} and starting redis-server failed (${(e as Error).message}); ` +
        "install redis-server or set MOCRA_TEST_REDIS_URL to a running Redis",
    );
  }
  process.env.MOCRA_TEST_REDIS_URL = `redis://127.0.0.1:${own}`;
  console.warn(`no Redis at ${configured}: started redis-server on 127.0.0.1:${own} for this run`);
}

export async function teardown(): Promise<void> {
  if (started) await stopRedisServer(started);
  started = undefined;
}
