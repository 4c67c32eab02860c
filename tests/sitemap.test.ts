// Sitemaps as a start source: robots.txt Sitemap: lines, a sitemap index with a plain and a
// gzipped child, <lastmod> filtering, and a huge sitemap read only as far as it is pulled.
import { gzipSync } from "node:zlib";
import { afterEach, describe, expect, it } from "vitest";
import { defineModule } from "../src/index.ts";
import { robotsSitemaps, sitemap, sitemapsInRobots } from "../src/sitemap/sitemap.ts";
import { cleanup, crawl, testConfig } from "./helpers/crawl.ts";
import { html, startServer, type TestServer } from "./helpers/http-server.ts";

let server: TestServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

const urlset = (entries: Array<[string, string?]>) =>
  `<?xml version="1.0" encoding="UTF-8"?>\n<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">${entries
    .map(([loc, lastmod]) => `<url><loc>${loc}</loc>${lastmod ? `<lastmod>${lastmod}</lastmod>` : ""}</url>`)
    .join("\n")}</urlset>`;

async function siteWithSitemaps(): Promise<TestServer> {
  let base = "";
  const s = await startServer((req, res) => void serve(req.url ?? "/", res));
  base = s.url;
  return s;

  function serve(path: string, res: import("node:http").ServerResponse): unknown {
    if (path === "/robots.txt") {
      res.writeHead(200, { "content-type": "text/plain" });
      return res.end(`User-agent: *\nDisallow: /private/\nSitemap: ${base}/sitemap_index.xml\n`);
    }
    if (path === "/sitemap_index.xml") {
      res.writeHead(200, { "content-type": "application/xml" });
      return res.end(`<?xml version="1.0"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
<sitemap><loc>${base}/sitemap-a.xml</loc></sitemap><sitemap><loc>/sitemap-b.xml.gz</loc><lastmod>2026-01-01</lastmod></sitemap></sitemapindex>`);
    }
    if (path === "/sitemap-a.xml") {
      res.writeHead(200, { "content-type": "text/xml; charset=utf-8" });
      return res.end(urlset([[`${base}/page/a1?x=1&amp;y=2`, "2026-03-01T10:00:00+00:00"], [`${base}/page/a2`, "2025-01-01"], [`${base}/page/a3`]]));
    }
    if (path === "/sitemap-b.xml.gz") {
      res.writeHead(200, { "content-type": "application/x-gzip" });
      return res.end(gzipSync(urlset([[`${base}/page/b1`, "2026-02-02"], [`${base}/page/b2`, "2024-12-31"], [`${base}/private/b3`, "2026-02-02"]])));
    }
    if (path.startsWith("/page/")) return html(res, `<h1>${path}</h1>`);
    return html(res, "nope", 404);
  }
}

const bytesTotalOf = (n: number) => n * `<url><loc>http://127.0.0.1/item/100000</loc><lastmod>2026-01-01</lastmod></url>\n`.length;

describe("sitemaps", () => {
  it("robots.txt → sitemap index → plain and gzipped sitemaps, filtered by <lastmod>, crawled as a start", async () => {
    server = await siteWithSitemaps();
    const site = server.url;
    expect(await sitemapsInRobots(site)).toEqual([`${site}/sitemap_index.xml`]);

    const m = defineModule({
      name: "from_sitemap",
      start: () => robotsSitemaps(site, { since: new Date("2025-06-01") }),
      parse(page, ctx) {
        ctx.emit({ h1: page.text("h1") });
      },
    });
    const config = await testConfig();
    try {
      const run = await crawl(config, [m]);
      // a2 (2025-01-01) and b2 (2024-12-31) are older than `since`; a3 has no lastmod (kept); b3 is disallowed by robots.txt
      expect(run.items.map((i) => i.h1).sort()).toEqual(["/page/a1?x=1&y=2", "/page/a3", "/page/b1"]);
      expect(server.hits.has("/private/b3")).toBe(false);
      expect(server.hits.has("/page/a2")).toBe(false);
      expect(server.hits.get("/sitemap-b.xml.gz")).toBe(1);
    } finally {
      await cleanup(config);
    }
  }, 60_000);

  it("entries carry lastmod, filter and toSeed apply, and a missing sitemap fails with its URL", async () => {
    server = await siteWithSitemaps();
    const seen: Array<{ url: string; lastmod?: string }> = [];
    for await (const seed of sitemap(`${server.url}/sitemap-a.xml`, {
      filter: (e) => e.url.includes("/page/a"),
      toSeed: (e) => {
        seen.push({ url: e.url, lastmod: e.lastmod?.toISOString() });
        return { url: e.url, data: { lastmod: e.lastmod?.toISOString() ?? null } };
      },
    })) void seed;
    expect(seen).toEqual([
      { url: `${server.url}/page/a1?x=1&y=2`, lastmod: "2026-03-01T10:00:00.000Z" },
      { url: `${server.url}/page/a2`, lastmod: "2025-01-01T00:00:00.000Z" },
      { url: `${server.url}/page/a3`, lastmod: undefined },
    ]);
    const missing = sitemap(`${server.url}/nope.xml`);
    await expect(missing.next()).rejects.toThrow(`sitemap ${server.url}/nope.xml: HTTP 404`);
    const skipped: string[] = [];
    for await (const s of sitemap([`${server.url}/nope.xml`, `${server.url}/sitemap-a.xml`], { onError: (u, r) => skipped.push(`${u} ${r}`) })) void s;
    expect(skipped).toEqual([`${server.url}/nope.xml sitemap ${server.url}/nope.xml: HTTP 404`]);
  });

  it("a sitemap of 200 000 URLs is read only as far as it is pulled", async () => {
    const total = 200_000;
    let written = 0;
    server = await startServer(async (_req, res) => {
      res.writeHead(200, { "content-type": "application/xml" });
      const write = (s: string) => {
        written += s.length;
        return res.write(s) ? Promise.resolve() : new Promise<void>((r) => res.once("drain", () => r()));
      };
      await write(`<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">`);
      for (let i = 0; i < total; i += 1000) {
        let chunk = "";
        for (let j = i; j < i + 1000; j++) chunk += `<url><loc>http://127.0.0.1/item/${j}</loc><lastmod>2026-01-01</lastmod></url>\n`;
        if (res.destroyed) return;
        await write(chunk);
      }
      res.end("</urlset>");
    });
    const it = sitemap(`${server.url}/big.xml`);
    const first: string[] = [];
    for (let i = 0; i < 10; i++) first.push(String((await it.next()).value));
    expect(first[9]).toBe("http://127.0.0.1/item/9");
    // let the server fill whatever buffers there are (the transport's, the sockets'): then it is held back
    let previous = -1;
    for (let i = 0; i < 30 && written !== previous; i++) {
      previous = written;
      await new Promise((r) => setTimeout(r, 300));
    }
    expect(written).toBe(previous);
    expect(written).toBeLessThan(bytesTotalOf(total) / 2);
    await it.return(undefined);
  }, 60_000);
});
