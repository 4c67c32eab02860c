import { brotliCompressSync, deflateSync, gzipSync } from "node:zlib";
import { afterEach, describe, expect, it } from "vitest";
import { DownloadError } from "../src/download/download-error.ts";
import { HttpClient } from "../src/download/http-client.ts";
import { kyTransport } from "../src/runtime/ky-transport.ts";
import { cookie, request } from "../src/model/index.ts";
import { startServer, type TestServer } from "./helpers/http-server.ts";

let server: TestServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

const page = "<h1>hello</h1>".repeat(100);

async function site(): Promise<TestServer> {
  return startServer((req, res) => {
    const path = req.url ?? "/";
    const send = (body: Buffer, encoding?: string) => {
      res.writeHead(200, { "content-type": "text/html", "content-length": body.length, ...(encoding ? { "content-encoding": encoding } : {}) });
      res.end(body);
    };
    if (path === "/stall-head") return; // never answers
    if (path === "/stall-body") {
      res.writeHead(200, { "content-type": "text/html", "content-length": 100_000 });
      res.write(page); // then nothing more
      return;
    }
    if (path === "/gzip") return send(gzipSync(page), "gzip");
    if (path === "/br") return send(brotliCompressSync(page), "br");
    if (path === "/deflate") return send(deflateSync(page), "deflate");
    if (path === "/echo") {
      res.writeHead(200, { "content-type": "application/json", "set-cookie": ["sid=abc; Path=/; HttpOnly", "theme=dark; Max-Age=60"] });
      let body = "";
      req.on("data", (d: Buffer) => (body += d.toString()));
      req.on("end", () => res.end(JSON.stringify({ method: req.method, headers: req.headers, body })));
      return;
    }
    const hop = /^\/r(\d+)$/.exec(path);
    if (hop) {
      const n = Number(hop[1]);
      res.writeHead(302, { location: n > 0 ? `/r${n - 1}` : "/echo" });
      res.end();
      return;
    }
    res.writeHead(404);
    res.end();
  });
}

const transports = { default: undefined, "ky + fetch": kyTransport() };

describe.each(Object.entries(transports))("HttpClient over the %s transport", (_name, transport) => {
  const client = () => new HttpClient({ userAgent: "test-agent/1", maxBodyBytes: 1_000_000, maxRedirects: 3, transport });

  it("decodes gzip, br and deflate bodies", async () => {
    server = await site();
    for (const enc of ["gzip", "br", "deflate"]) {
      const res = await client().fetch(request({ url: `${server.url}/${enc}` }));
      expect(new TextDecoder().decode(res.content), enc).toBe(page);
    }
  });

  it("sends method, headers, cookies and a JSON body; reads Set-Cookie", async () => {
    server = await site();
    const res = await client().fetch(
      request({ url: `${server.url}/echo`, method: "POST", json: { q: 1 }, headers: [{ key: "X-Test", value: "yes" }], cookies: [cookie({ name: "a", value: "1" })] }),
    );
    const echo = JSON.parse(new TextDecoder().decode(res.content));
    expect(echo.method).toBe("POST");
    expect(echo.body).toBe('{"q":1}');
    expect(echo.headers["content-type"]).toBe("application/json");
    expect(echo.headers["x-test"]).toBe("yes");
    expect(echo.headers["user-agent"]).toBe("test-agent/1");
    expect(echo.headers.cookie).toBe("a=1");
    expect(res.cookies.map((c) => [c.name, c.value, c.httpOnly])).toEqual([["sid", "abc", true], ["theme", "dark", null]]);
  });

  it("follows redirects up to max_redirects and records the final URL", async () => {
    server = await site();
    const res = await client().fetch(request({ url: `${server.url}/r2` }));
    expect(res.statusCode).toBe(200);
    expect(res.headers.find(([k]) => k === "x-mocra-url")?.[1]).toBe(`${server.url}/echo`);
    const err = await client().fetch(request({ url: `${server.url}/r5` })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DownloadError);
    expect((err as DownloadError).message).toMatch(/too many redirects/);
  });

  it("fails at the deadline (retryable) whether the server stalls before the headers or in the body", async () => {
    server = await site();
    for (const path of ["/stall-head", "/stall-body"]) {
      const t0 = performance.now();
      const err = await client().fetch(request({ url: `${server.url}${path}`, timeout: 0.3 })).catch((e: unknown) => e);
      expect(err, path).toBeInstanceOf(DownloadError);
      expect((err as DownloadError).message, path).toBe("timeout after 0.3s");
      expect((err as DownloadError).retryable, path).toBe(true);
      expect(performance.now() - t0, path).toBeLessThan(2000);
    }
  });

  it("reports a refused connection as a retryable network error", async () => {
    const err = await client().fetch(request({ url: "http://127.0.0.1:1/" })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DownloadError);
    expect((err as DownloadError).retryable).toBe(true);
    expect((err as DownloadError).message).toMatch(/network error/);
  });
});
