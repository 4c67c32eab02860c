// The default HTTP transport per runtime (the one place that knows):
// - Node: undici's dispatcher API (`Agent.request`) with `pool_size` connections per origin and
//   keep-alive; compressed bodies are decoded here with node:zlib. Measured on the benchmark
//   workload it costs ~100 µs of CPU per request against ~440 µs for Node 20's global fetch and
//   ~690 µs for ky over it (tests/benchmark_compare.ts), the largest single cost of a page.
// - Deno: ky over Deno's native fetch.
import { kyTransport } from "./ky-transport.ts";
import type { HopRequest, HopResponse, Transport } from "./transport.ts";
import type { Agent, Dispatcher } from "undici";
import { runtime } from "./index.ts";

export function defaultTransport(poolSize: number): Transport {
  return runtime === "deno" ? kyTransport() : nodeTransport(poolSize);
}

type UndiciBody = AsyncIterable<Uint8Array> & { destroy(err?: Error): void; on(event: "error", f: () => void): void };

function nodeTransport(poolSize: number): Transport {
  let agent: Promise<Agent> | undefined;
  const getAgent = () => (agent ??= import("undici").then((undici) => new undici.Agent({ connections: poolSize, keepAliveTimeout: 30_000 })));
  return {
    async send(url: string, init: HopRequest): Promise<HopResponse> {
      const u = new URL(url);
      const res = await (await getAgent()).request({
        origin: u.origin,
        path: u.pathname + u.search,
        method: init.method as Dispatcher.HttpMethod,
        headers: init.headers,
        body: init.body,
        // undici takes the Deadline itself (EventEmitter-like): no AbortSignal per request
        signal: init.deadline as unknown as Dispatcher.RequestOptions["signal"],
        // HttpClient's deadline covers headers and body; undici's own timers stay out of the way
        headersTimeout: 0,
        bodyTimeout: 0,
      });
      const headers: Array<[string, string]> = [];
      let setCookies: string[] = [];
      for (const [k, v] of Object.entries(res.headers)) {
        if (v === undefined) continue;
        if (k === "set-cookie") setCookies = Array.isArray(v) ? v : [v];
        else headers.push([k, Array.isArray(v) ? v.join(", ") : v]);
      }
      const encoding = res.headers["content-encoding"];
      const noBody = init.method === "HEAD" || res.statusCode === 204 || res.statusCode === 304;
      return {
        status: res.statusCode,
        headers,
        setCookies,
        body: noBody ? null : await decoded(res.body, typeof encoding === "string" ? encoding : undefined),
        cancel: async () => {
          res.body.on("error", () => {}); // destroying a body makes it emit an abort error: expected
          res.body.destroy();
        },
      };
    },
    async close() {
      if (agent) await (await agent).close();
    },
  };
}

/** The body with its content-encoding (gzip, deflate, br) undone. */
async function decoded(body: UndiciBody, encoding: string | undefined): Promise<AsyncIterable<Uint8Array>> {
  const enc = encoding?.trim().toLowerCase();
  if (!enc || enc === "identity") return body;
  const zlib = await import("node:zlib");
  const { Readable } = await import("node:stream");
  const source = Readable.from(body);
  const decoder =
    enc === "gzip" || enc === "x-gzip"
      ? zlib.createGunzip()
      : enc === "deflate"
        ? zlib.createInflate()
        : enc === "br"
          ? zlib.createBrotliDecompress()
          : undefined;
  if (!decoder) return body; // unknown coding: hand the bytes over as they came
  source.on("error", (err) => decoder.destroy(err));
  return source.pipe(decoder);
}
