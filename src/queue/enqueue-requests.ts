import { fingerprint, needsRenderer, type Request } from "../model/index.ts";
import type { PublishResult, Queue } from "./queue.ts";

/** Enqueues requests deduplicated by mocra's fingerprint (seen-check and enqueue in one step). */
export async function enqueueRequests(queue: Queue, requests: readonly Request[]): Promise<PublishResult> {
  // requests that need a browser go to the `render` topic, read only by workers that can render
  let render: Request[] | undefined;
  let plain: readonly Request[] = requests;
  for (const req of requests) {
    if (needsRenderer(req)) {
      render ??= [];
      render.push(req);
    }
  }
  if (render) plain = requests.filter((r) => !needsRenderer(r));
  const out = plain.length > 0 || !render ? await queue.publish("request", plain.map((req) => ({ message: req, dedupKey: fingerprint(req) }))) : { accepted: 0, duplicates: 0 };
  if (!render) return out;
  const r = await queue.publish("render", render.map((req) => ({ message: req, dedupKey: fingerprint(req) })));
  return { ...out, accepted: out.accepted + r.accepted, duplicates: out.duplicates + r.duplicates };
}
