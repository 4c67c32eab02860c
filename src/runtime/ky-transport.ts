import ky from "ky";
import type { HopRequest, HopResponse, Transport } from "./transport.ts";

/**
 * ky over a fetch (the runtime's, or a proxy transport's). fetch decodes compressed bodies
 * itself. Used on Deno (whose fetch is native and fast) and for proxied requests.
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
      };
    },
  };
}
