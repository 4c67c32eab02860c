import http from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { itemPrice, itemTitle, startShop, type ShopServer } from "../examples/demo-shop/shop.ts";

const LINK_RE = /href="(\/(?:item|list)\/\d+)"/g;

function links(html: string): string[] {
  return [...html.matchAll(LINK_RE)].map((m) => m[1]);
}

function text(html: string, re: RegExp): string | undefined {
  return re.exec(html)?.[1];
}

describe("demo shop: pages", () => {
  let shop: ShopServer;
  beforeAll(async () => {
    shop = await startShop(); // 200 items, 50 per page
  });
  afterAll(async () => {
    await shop.close();
  });

  it("listens on 127.0.0.1 with an ephemeral port", () => {
    expect(shop.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(shop.url.endsWith(":0")).toBe(false);
  });

  it("serves /list/0 with perPage item links and a next link", async () => {
    const res = await fetch(`${shop.url}/list/0`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/html/);
    const body = await res.text();
    expect(Number(res.headers.get("content-length"))).toBe(Buffer.byteLength(body));
    const l = links(body);
    const items = l.filter((h) => h.startsWith("/item/"));
    expect(items).toEqual(Array.from({ length: 50 }, (_, i) => `/item/${i}`));
    expect(l.filter((h) => h.startsWith("/list/"))).toEqual(["/list/1"]);
    expect(body).toContain(itemTitle(7));
    expect(body).toContain(itemPrice(7));
  });

  it("last list page has no next link", async () => {
    const body = await (await fetch(`${shop.url}/list/3`)).text();
    const l = links(body);
    expect(l.filter((h) => h.startsWith("/list/"))).toEqual([]);
    expect(l).toHaveLength(50);
    expect(l[0]).toBe("/item/150");
    expect((await fetch(`${shop.url}/list/4`)).status).toBe(404);
  });

  it("serves an item page: title, price, desc, ~6 KB, 5 item + 3 list links", async () => {
    const id = 123;
    const res = await fetch(`${shop.url}/item/${id}`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/html; charset=utf-8");
    const body = await res.text();
    const size = Buffer.byteLength(body);
    expect(Number(res.headers.get("content-length"))).toBe(size);
    expect(size).toBeGreaterThan(5000);
    expect(size).toBeLessThan(7500);

    expect(text(body, /<h1 class="title">([^<]*)<\/h1>/)).toBe(itemTitle(id));
    expect(text(body, /<span class="price">([^<]*)<\/span>/)).toBe(itemPrice(id));
    expect(itemPrice(id)).toMatch(/^\$\d+\.\d\d$/);
    const desc = text(body, /<div class="desc">([\s\S]*?)<\/div>/);
    expect(desc).toBeDefined();
    expect((desc!.match(/<p>/g) ?? []).length).toBeGreaterThanOrEqual(3);
    expect(desc!.length).toBeGreaterThan(2000);
    expect(body).toMatch(/<header>[\s\S]*<nav>[\s\S]*<\/header>/);
    expect(body).toMatch(/<footer>[\s\S]*<\/footer>/);

    const all = [...body.matchAll(/href="([^"]*)"/g)].map((m) => m[1]);
    const items = all.filter((h) => /^\/item\/\d+$/.test(h));
    const lists = all.filter((h) => /^\/list\/\d+$/.test(h));
    expect(all).toHaveLength(8);
    expect(items).toHaveLength(5);
    expect(lists).toHaveLength(3);
    const ids = items.map((h) => Number(h.slice(6)));
    expect(new Set(ids).size).toBe(5);
    expect(ids).not.toContain(id);
    for (const r of ids) expect(r).toBeLessThan(200);
    for (const h of lists) expect(Number(h.slice(6))).toBeLessThan(4);
  });

  it("is deterministic", async () => {
    const a = await (await fetch(`${shop.url}/item/42`)).text();
    const b = await (await fetch(`${shop.url}/item/42`)).text();
    expect(a).toBe(b);
    const other = await startShop({ items: 200 });
    try {
      expect(await (await fetch(`${other.url}/item/42`)).text()).toBe(a);
    } finally {
      await other.close();
    }
    // pinned values: the same on every run, runtime and machine (benchmarks and tests rely on it)
    expect(itemTitle(42)).toBe("Minimal Bamboo Frame No. 42");
    expect(itemTitle(43)).toBe("Sturdy Marble Notebook No. 43");
    expect(itemPrice(42)).toBe("$391.05");
    expect(a).toContain(`<h1 class="title">${itemTitle(42)}</h1>`);
  });

  it("404s out-of-range ids and unknown paths", async () => {
    for (const p of ["/item/200", "/item/-1", "/item/007", "/item/abc", "/item/", "/list/x", "/nope", "/item/1/"]) {
      const res = await fetch(`${shop.url}${p}`);
      expect(res.status, p).toBe(404);
      expect(res.headers.get("content-type"), p).toMatch(/^text\/html/);
      const body = await res.text();
      expect(Number(res.headers.get("content-length")), p).toBe(Buffer.byteLength(body));
    }
  });

  it("serves /robots.txt", async () => {
    const res = await fetch(`${shop.url}/robots.txt`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/plain/);
    expect(await res.text()).toBe("User-agent: *\nAllow: /\n");
    expect(res.headers.get("content-length")).toBe("23");
  });

  it("redirects / to /list/0 with 302", async () => {
    const res = await fetch(`${shop.url}/`, { redirect: "manual" });
    expect(res.status).toBe(302);
    expect(res.headers.get("location")).toBe("/list/0");
    expect(res.headers.get("content-type")).toBeTruthy();
    const body = await res.text();
    expect(Number(res.headers.get("content-length"))).toBe(Buffer.byteLength(body));
    const followed = await fetch(`${shop.url}/`);
    expect(followed.url).toBe(`${shop.url}/list/0`);
    expect(followed.status).toBe(200);
    await followed.arrayBuffer();
  });

  it("answers HEAD without a body", async () => {
    const res = await fetch(`${shop.url}/item/1`, { method: "HEAD" });
    expect(res.status).toBe(200);
    expect(Number(res.headers.get("content-length"))).toBeGreaterThan(5000);
    expect(await res.text()).toBe("");
  });
});

describe("demo shop: crawl", () => {
  for (const [items, perPage] of [
    [200, 50],
    [237, 20],
    [3, 50],
  ] as const) {
    it(`BFS from /list/0 reaches exactly ${items} items (perPage ${perPage}), each page fetched once`, async () => {
      const shop = await startShop({ items, perPage });
      try {
        const seen = new Set<string>(["/list/0"]);
        let frontier = ["/list/0"];
        while (frontier.length > 0) {
          const bodies = await Promise.all(
            frontier.map(async (p) => {
              const res = await fetch(shop.url + p);
              expect(res.status, p).toBe(200);
              return res.text();
            }),
          );
          const next: string[] = [];
          for (const body of bodies) {
            for (const l of links(body)) {
              if (!seen.has(l)) {
                seen.add(l);
                next.push(l);
              }
            }
          }
          frontier = next;
        }
        const itemPaths = [...seen].filter((p) => p.startsWith("/item/"));
        const listPaths = [...seen].filter((p) => p.startsWith("/list/"));
        expect(itemPaths).toHaveLength(items);
        expect(new Set(itemPaths)).toEqual(new Set(Array.from({ length: items }, (_, i) => `/item/${i}`)));
        expect(listPaths).toHaveLength(Math.ceil(items / perPage));

        // hits accounting: every page exactly once, nothing else
        expect(shop.totalHits).toBe(seen.size);
        expect(shop.hits.size).toBe(seen.size);
        for (const p of seen) expect(shop.hits.get(p), p).toBe(1);
      } finally {
        await shop.close();
      }
    });
  }

  it("item links overlap between pages (dedup matters)", async () => {
    const shop = await startShop({ items: 200 });
    try {
      let total = 0;
      const distinct = new Set<string>();
      for (let id = 0; id < 200; id++) {
        const l = links(await (await fetch(`${shop.url}/item/${id}`)).text()).filter((h) =>
          h.startsWith("/item/"),
        );
        total += l.length;
        for (const h of l) distinct.add(h);
      }
      expect(total).toBe(1000);
      expect(distinct.size).toBeLessThan(total);
    } finally {
      await shop.close();
    }
  });
});

describe("demo shop: accounting, latency, close", () => {
  it("counts every request per path, including 404s and repeats, ignoring the query", async () => {
    const shop = await startShop({ items: 10 });
    try {
      for (const p of ["/item/1", "/item/1", "/item/1?x=2", "/nope", "/", "/robots.txt"]) {
        await (await fetch(shop.url + p, { redirect: "manual" })).arrayBuffer();
      }
      expect(shop.hits.get("/item/1")).toBe(3);
      expect(shop.hits.get("/nope")).toBe(1);
      expect(shop.hits.get("/")).toBe(1);
      expect(shop.hits.get("/robots.txt")).toBe(1);
      expect(shop.hits.has("/list/0")).toBe(false);
      expect(shop.totalHits).toBe(6);
    } finally {
      await shop.close();
    }
  });

  it("renders on the fly above the cache bound (N > 50 000) with the same content", async () => {
    const big = await startShop({ items: 60_000 });
    const other = await startShop({ items: 60_000, perPage: 50 });
    try {
      const res = await fetch(`${big.url}/item/59999`);
      expect(res.status).toBe(200);
      const body = await res.text();
      expect(text(body, /<h1 class="title">([^<]*)<\/h1>/)).toBe(itemTitle(59999));
      expect(await (await fetch(`${big.url}/item/59999`)).text()).toBe(body);
      expect(await (await fetch(`${other.url}/item/59999`)).text()).toBe(body);
      const last = await (await fetch(`${big.url}/list/1199`)).text();
      expect(links(last)).toHaveLength(50);
      expect((await fetch(`${big.url}/item/60000`)).status).toBe(404);
    } finally {
      await Promise.all([big.close(), other.close()]);
    }
  });

  it("adds latencyMs before each response", async () => {
    const shop = await startShop({ items: 10, latencyMs: 80 });
    try {
      const t0 = performance.now();
      const res = await fetch(`${shop.url}/item/1`);
      await res.text();
      expect(performance.now() - t0).toBeGreaterThanOrEqual(70);
    } finally {
      await shop.close();
    }
  });

  it("rejects bad options and busy ports", async () => {
    await expect(startShop({ perPage: 0 })).rejects.toThrow(RangeError);
    await expect(startShop({ items: 1.5 })).rejects.toThrow(RangeError);
    const shop = await startShop({ items: 1 });
    try {
      const port = Number(new URL(shop.url).port);
      await expect(startShop({ port })).rejects.toThrow(/EADDRINUSE/);
    } finally {
      await shop.close();
    }
  });

  it("keeps connections alive", async () => {
    const shop = await startShop({ items: 10 });
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const ports = new Set<number>();
      for (let i = 0; i < 5; i++) {
        await new Promise<void>((resolve, reject) => {
          http
            .get(`${shop.url}/item/${i}`, { agent }, (res) => {
              expect(res.headers.connection).toBe("keep-alive");
              ports.add(res.socket.localPort ?? -1);
              res.resume();
              res.on("end", resolve);
            })
            .on("error", reject);
        });
      }
      expect(ports.size).toBe(1);
    } finally {
      agent.destroy();
      await shop.close();
    }
  });

  it("close() resolves promptly with idle keep-alive clients and in-flight requests", async () => {
    const shop = await startShop({ items: 10, latencyMs: 10_000 });
    const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
    const fast = await startShop({ items: 10 });
    try {
      // idle keep-alive sockets on `fast`
      await Promise.all(
        [1, 2, 3, 4].map(
          (i) =>
            new Promise<void>((resolve, reject) => {
              http
                .get(`${fast.url}/item/${i}`, { agent }, (res) => {
                  res.resume();
                  res.on("end", resolve);
                })
                .on("error", reject);
            }),
        ),
      );
      // in-flight (delayed) requests on `shop`
      const pending = [1, 2].map(
        (i) =>
          new Promise<string>((resolve) => {
            http
              .get(`${shop.url}/item/${i}`, { agent }, (res) => {
                res.resume();
                res.on("end", () => resolve("done"));
              })
              .on("error", () => resolve("error"));
          }),
      );
      await new Promise((r) => setTimeout(r, 50));
      expect(shop.totalHits).toBe(2);

      const t0 = performance.now();
      await Promise.all([fast.close(), shop.close()]);
      expect(performance.now() - t0).toBeLessThan(1000);
      expect(await Promise.all(pending)).toEqual(["error", "error"]);
      await shop.close(); // idempotent
      await expect(fetch(`${fast.url}/item/1`)).rejects.toThrow();
    } finally {
      agent.destroy();
    }
  });
});
