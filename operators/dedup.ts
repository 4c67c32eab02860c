import { filter, mergeMap, type OperatorFunction, pipe } from "rxjs";
import { fingerprint, type Request } from "../src/model/index.ts";
import type { Job } from "./job.ts";

/** Anything that remembers keys: `add` answers false for a key it has seen. */
export interface SeenKeys {
  add(key: string): boolean | Promise<boolean>;
}

/**
 * Drops (and acks) requests whose fingerprint was seen before. The engine's own flows dedup at
 * enqueue time instead (atomically with the enqueue); this is for chains that read from
 * sources without that guarantee.
 */
export function dedup(seen: SeenKeys): OperatorFunction<Job<Request>, Job<Request>> {
  return pipe(
    mergeMap(async (job: Job<Request>) => {
      if (!job.ok || (await seen.add(fingerprint(job.value)))) return job;
      await job.message.ack();
      return null;
    }),
    filter((job): job is Job<Request> => job !== null),
  );
}
