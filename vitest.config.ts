import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["tests/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 30_000,
    pool: "forks",
    // one file at a time: rate-limit and timing tests measure gaps of a few ms, and the
    // distributed tests start worker processes; on a 2-core machine they disturb each other
    fileParallelism: false,
  },
});
