// src/queue/redis/index.ts: the Redis Streams backend of the Queue.
export { QueueClosedError, RedisQueue, RedisQueueFatalError, type RedisQueueOptions } from "./redis-queue.ts";
export { QueueKeys, type StreamRef } from "./keys.ts";
export { crc32 } from "../../codec/crc32.ts";
export { isFinished, listRuns, readRun, recordSubmittedRun, RUN_TTL_SECS, RunBook, type RunCounts, runView } from "./runs.ts";
