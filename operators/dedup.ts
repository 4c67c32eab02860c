import { filter, mergeMap, type OperatorFunction, pipe } from "rxjs";
import type { EventBus } from "../src/events/bus.ts";
import { fingerprint, type Request } from "../src/model/index.ts";
import { ackOrReport } from "./ack.ts";
import { failed, type Job } from "./job.ts";

/** Anything that remembers keys: `add` answers false for a key it has seen. */
export interface SeenKeys {
  add(key: string): boolean | Promise<boolean>;
}

/**
 * Drops (and acks) requests whose fingerprint was seen before. The engine's own flows dedup at
 * enqueue time instead (atomically with the enqueue); this is for chains that read from
 * sources without that guarantee. A seen-set that fails (e.g. Redis down) fails that request
 * only, as a retryable failure for the `retry` stage; a failed ack is reported, not thrown.
 */
export function dedup(seen: SeenKeys, options: { events?: EventBus } = {}): OperatorFunction<Job<Request>, Job<Request>> {
  return pipe(
    mergeMap(async (job: Job<Request>) => {
      if (!job.ok) return job;
      let fresh: boolean;
      try {
        fresh = await seen.add(fingerprint(job.value));
      } catch (err) {
        const reason = `dedup failed: ${err instanceof Error ? err.message : String(err)}`;
        return failed<Request>(job.message, { stage: "dedup", reason, retryable: true, url: job.value.url });
      }
      if (fresh) return job;
      await ackOrReport(job.message, options.events);
      return null;
    }),
    filter((job): job is Job<Request> => job !== null),
  );
}
