// tests/bench/undici-downloader.ts: a PROTOTYPE Downloader on undici's dispatcher API (Agent.request)
// instead of ky + Node's global fetch, to measure what that change would buy inside the real engine
// (crawl-mocra.ts --downloader undici). Not a drop-in replacement for src/download/http-client.ts:
// no redirects, no decompression (it asks for identity), no Set-Cookie parsing, no body size cap;
// a real one would add undici's redirect/decompress interceptors and keep HttpClient's checks.
import { Agent } from "undici";
import { type Request, type Response, responseFor } from "../../src/model/index.ts";
import { URL_HEADER } from "../../src/modules/page.ts";
import type { Downloader } from "../../operators/index.ts";

export class UndiciDownloader implements Downloader {
  private readonly agent: Agent;

  constructor(
    private readonly userAgent: string,
    connections: number,
  ) {
    this.agent = new Agent({ connections, pipelining: 1, keepAliveTimeout: 30_000 });
  }

  async fetch(req: Request): Promise<Response> {
    const url = req.url;
    const slash = url.indexOf("/", url.indexOf("//") + 2);
    const origin = slash < 0 ? url : url.slice(0, slash);
    const path = slash < 0 ? "/" : url.slice(slash);
    const headers: Record<string, string> = { "user-agent": this.userAgent };
    for (const h of req.headers) headers[h.key.toLowerCase()] = h.value;
    const timeoutMs = req.timeout * 1000;
    const res = await this.agent.request({ origin, path, method: req.method as "GET", headers, headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
    const content = new Uint8Array(await res.body.arrayBuffer());
    const out: Array<[string, string]> = [];
    for (const [k, v] of Object.entries(res.headers)) {
      if (k === "set-cookie" || v === undefined) continue;
      out.push([k, Array.isArray(v) ? v.join(", ") : v]);
    }
    out.push([URL_HEADER, url]);
    return responseFor(req, { statusCode: res.statusCode, content, headers: out, cookies: [] });
  }

  close(): Promise<void> {
    return this.agent.close();
  }
}
