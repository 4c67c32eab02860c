import ky from "ky";
import type { HopRequest, HopResponse, Transport } from "./transport.ts";

/**
 * ky over a fetch (the runtime's, or a proxy transport's). fetch decodes compressed bodies
 * itself. Used for proxied requests (and by `--downloader ky` in tests/bench/crawl-mocra.ts).
 */
export function kyTransport(fetch?: typeof globalThis.fetch): Transport {
  return {
    async send(url: string, init: HopRequest): Promise<HopResponse> {
      const res = await ky(url, {
        method: init.method,
        headers: init.headers,
        body: init.body as BodyInit | undefined,
        signal: init.deadline.signal,
        timeout: false,
        retry: 0,
        throwHttpErrors: false,
        redirect: "manual",
        fetch,
      });
      return hopResponse(res);
    },
  };
}

/**
 * The runtime's own fetch, called directly: Deno's transport for hops that need no address
 * check. With retries, timeouts and HTTP errors off (HttpClient does those) ky adds nothing
 * but its per-request options and hooks, which cost ~40 µs of CPU per 6 KB page on Deno 2.9
 * (mocra's HttpClient, C = 64 on the demo shop: 128–136 µs per request through ky, 83–93 direct).
 */
export function fetchTransport(fetch: typeof globalThis.fetch = globalThis.fetch): Transport {
  return {
    async send(url: string, init: HopRequest): Promise<HopResponse> {
      const res = await fetch(url, {
        method: init.method,
        headers: init.headers,
        body: init.body as BodyInit | undefined,
        signal: init.deadline.signal,
        redirect: "manual",
      });
      return hopResponse(res);
    },
  };
}

/** A fetch Response as a hop: header pairs (Set-Cookie apart), the body stream, and one-read bytes. */
function hopResponse(res: Response): HopResponse {
  const headers: Array<[string, string]> = [];
  res.headers.forEach((value, key) => {
    if (key !== "set-cookie") headers.push([key, value]);
  });
  const body = res.body;
  return {
    status: res.status,
    headers,
    setCookies: res.headers.getSetCookie?.() ?? [],
    body: body as AsyncIterable<Uint8Array> | null,
    cancel: async () => {
      await body?.cancel().catch(() => {});
    },
    bytes: async () => new Uint8Array(await res.arrayBuffer()),
  };
}
