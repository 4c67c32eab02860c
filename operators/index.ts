// The RxJS operators every flow is composed of; public API.
export { ack } from "./ack.ts";
export { budget } from "./budget.ts";
export { checkRequest } from "./check-request.ts";
export { dedup, type SeenKeys } from "./dedup.ts";
export { deferPausedModules } from "./defer-paused-modules.ts";
export { type DownloadOptions, type Downloader, download, type Fetched } from "./download.ts";
export { type FromQueueOptions, fromQueue } from "./from-queue.ts";
export { type FromRedisStreamOptions, fromRedisStream } from "./from-redis-stream.ts";
export { type Generated, type GenerateOptions, generate } from "./generate.ts";
export { type Failure, failed, type Job, mapJob, Message, ok, StageError } from "./job.ts";
export { type ParseOptions, type Parsed, parse } from "./parse.ts";
export { politeness } from "./politeness.ts";
export { byHost, type RateLimitOptions, rateLimit } from "./rate-limit.ts";
export { deadLetter, type RetryOptions, retry } from "./retry.ts";
export { route } from "./route.ts";
export { sink } from "./sink.ts";
export { toQueue } from "./to-queue.ts";
