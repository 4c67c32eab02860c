import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["tests/**/*.test.ts"],
    // finds the Redis at MOCRA_TEST_REDIS_URL or starts a redis-server: Redis tests never skip
    globalSetup: ["tests/setup/redis.ts"],
    testTimeout: 60_000,
    hookTimeout: 30_000,
    pool: "forks",
    // one file at a time: rate-limit and timing tests measure gaps of a few ms, and the
    // distributed tests start worker processes; on a 2-core machine they disturb each other
    fileParallelism: false,
  },
});
