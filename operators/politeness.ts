import type { OperatorFunction } from "rxjs";
import type { Request } from "../src/model/index.ts";
import type { RequestGate } from "../src/ratelimit/gate.ts";
import { type Job, mapJob, StageError } from "./job.ts";

/**
 * The politeness stage, before download(): robots.txt → suspension/circuit → per-domain
 * concurrency lease → GCRA slot (adaptive rate, Crawl-delay floor), then the reserved wait.
 * A request that may not go now fails its job without ever erroring the stream:
 * - disallowed by robots.txt: dropped (acked) with a `robots_disallowed` event;
 * - key suspended, no lease or rate slot within max_wait, robots.txt unreadable: deferred —
 *   re-queued after that delay without spending a delivery attempt, no slot held meanwhile.
 * Pair it with `download(stages.downloader)` from the same PolitenessKit, whose feedback layer
 * reports each outcome and releases the lease.
 */
export function politeness(gate: RequestGate): OperatorFunction<Job<Request>, Job<Request>> {
  return mapJob("politeness", async (req: Request) => {
    const a = await gate.admit(req);
    if (!a.ok) throw new StageError(a.failure);
    return req;
  });
}
