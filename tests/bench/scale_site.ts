// tests/bench/scale_site.ts: the on-the-fly site and the module of tests/benchmark_scale.ts.
//
// Page n links to its `fanout` children n·fanout+1 … n·fanout+fanout (new URLs: a page's children
// are nobody else's), and to its parent and `repeats` of its siblings (URLs already discovered
// when its parent was crawled: duplicates, as real sites repeat their navigation). Nothing is
// pre-rendered: each page is written when asked for. Every crawled page thus discovers exactly
// `fanout` distinct URLs, so after P pages 1 + P·fanout URLs are known.
import { createServer, type Server } from "node:http";
import { defineModule } from "../../src/modules/define.ts";

export interface ScaleSite {
  url: string;
  /** pages served so far */
  served(): number;
  stop(): Promise<void>;
}

export function pageHtml(n: number, fanout: number, repeats: number): string {
  const parts: string[] = ["<!doctype html><html><body><h1>page ", String(n), "</h1>"];
  const first = n * fanout + 1;
  for (let c = first; c < first + fanout; c++) parts.push('<a href="/p/', String(c), '">', String(c), "</a>");
  if (n > 0) {
    const parent = Math.floor((n - 1) / fanout);
    parts.push('<a href="/p/', String(parent), '">up</a>');
    const firstSibling = parent * fanout + 1;
    for (let s = 0; s < repeats; s++) parts.push('<a href="/p/', String(firstSibling + ((n + s) % fanout)), '">s</a>');
  }
  parts.push("</body></html>");
  return parts.join("");
}

export function startScaleSite(fanout: number, repeats: number): Promise<ScaleSite> {
  let served = 0;
  const server: Server = createServer((req, res) => {
    const m = /^\/p\/(\d+)$/.exec(req.url ?? "");
    if (!m) {
      res.writeHead(404).end();
      return;
    }
    served++;
    res.writeHead(200, { "content-type": "text/html; charset=utf-8" }).end(pageHtml(Number(m[1]), fanout, repeats));
  });
  server.keepAliveTimeout = 60_000;
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => {
      const addr = server.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      resolve({
        url: `http://127.0.0.1:${port}`,
        served: () => served,
        stop: () =>
          new Promise<void>((r) => {
            server.closeAllConnections();
            server.close(() => r());
          }),
      });
    });
  });
}

/** The crawl: follow every link of every page. */
export default defineModule({
  name: "scale_site",
  settings: { startUrl: "http://127.0.0.1:1/p/0" },
  start: ({ settings }) => [String(settings.startUrl)],
  steps: {
    page(page, ctx) {
      ctx.follow(page.links("a"), { step: "page" });
    },
  },
});
