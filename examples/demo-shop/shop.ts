/**
 * The bundled demo shop: a small, deterministic HTTP site on 127.0.0.1 that the `demo` command
 * crawls, that the test suites crawl, and that the benchmarks use as their mock.
 *
 * Workload (also the benchmark workload), for N items and `perPage` items per list page:
 *   /list/P    P = 0 .. ceil(N/perPage)-1; links to the items P*perPage .. min(N, (P+1)*perPage)-1
 *              and to /list/P+1 if there is one. No other links.
 *   /item/ID   ID = 0 .. N-1; about 6 KB: <h1 class="title">, <span class="price">,
 *              <div class="desc"> (pseudo-random paragraphs seeded by ID), exactly five links to
 *              other items (overlapping between pages, all < N) and exactly three links to list
 *              pages (home /list/0, the item's own list page, the next list page cyclically).
 *   /robots.txt  "User-agent: *\nAllow: /\n"
 *   /          302 -> /list/0
 *   anything else (or an ID out of range, or a non-canonical number such as "007") -> 404.
 * Every response carries Content-Type and Content-Length; connections are kept alive.
 *
 * Rendered pages are cached as Buffers (lazily, on first request) when N <= 50 000, otherwise
 * rendered on every request.
 *
 * Serving ceiling (measured with examples/demo-shop/measure.ts against `serve.ts --stats` in its own
 * process; Node 20, 2-vCPU container, keep-alive, concurrency 64, client on the same box):
 *   - server cost ~100-110 us CPU per cached page, the same as a bare node:http server answering
 *     a fixed 6 KB Buffer (85-98 us on that box) => ~9-10k pages/s per server process;
 *   - observed: 5-7k pages/s with a node:http keep-alive client, 1.6-2.3k pages/s with node's
 *     fetch (then the fetch client is the bottleneck; the server sits at ~35% of one core);
 *   - uncached (N > 50 000) item pages cost ~110 us more to render => ~4.5k pages/s;
 *   - under Deno 2 (node:http compat) ~150 us per page => ~6.5k pages/s.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { Socket } from "node:net";

export interface ShopOptions {
  /** Number of item pages, default 200. */
  items?: number;
  /** Items linked from each list page, default 50. */
  perPage?: number;
  /** Delay added before each response, default 0. */
  latencyMs?: number;
  /** Default "127.0.0.1". */
  host?: string;
  /** Default 0 = ephemeral. */
  port?: number;
}

export interface ShopServer {
  /** Base URL without a trailing slash, e.g. "http://127.0.0.1:34567". */
  readonly url: string;
  /** Path (without query) -> number of requests received for it; counts every request. */
  readonly hits: ReadonlyMap<string, number>;
  readonly totalHits: number;
  /** Closes the server and all its (keep-alive) sockets. */
  close(): Promise<void>;
}

/** Above this many items pages are rendered on every request instead of cached. */
export const SHOP_CACHE_MAX_ITEMS = 50_000;

// ---------------------------------------------------------------------------------------------
// Deterministic content
// ---------------------------------------------------------------------------------------------

/** 32-bit integer mix (murmur3 finaliser) of an id and a salt. */
function mix(id: number, salt: number): number {
  let h = (Math.imul(id, 0x9e3779b1) ^ Math.imul(salt + 1, 0x85ebca6b)) >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** mulberry32: small seeded PRNG returning 32-bit unsigned integers. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

const ADJECTIVES = [
  "Sturdy", "Elegant", "Compact", "Vintage", "Classic", "Modern", "Rustic", "Deluxe",
  "Portable", "Handmade", "Premium", "Minimal", "Bold", "Cozy", "Sleek", "Bright",
];
const MATERIALS = [
  "Oak", "Steel", "Linen", "Ceramic", "Bamboo", "Copper", "Leather", "Glass",
  "Wool", "Walnut", "Marble", "Cotton",
];
const NOUNS = [
  "Lamp", "Chair", "Kettle", "Backpack", "Notebook", "Clock", "Vase", "Blanket",
  "Mug", "Shelf", "Desk", "Speaker", "Bowl", "Jacket", "Planter", "Frame",
  "Tray", "Stool", "Basket", "Candle",
];
const CATEGORIES = ["Home", "Kitchen", "Office", "Outdoor", "Travel", "Decor", "Garden", "Apparel"];
const WORDS = (
  "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut " +
  "labore et dolore magna aliqua enim ad minim veniam quis nostrud exercitation ullamco laboris " +
  "nisi aliquip ex ea commodo consequat duis aute irure in reprehenderit voluptate velit esse " +
  "cillum fugiat nulla pariatur excepteur sint occaecat cupidatat non proident sunt culpa qui " +
  "officia deserunt mollit anim id est laborum crafted durable everyday quality design finish " +
  "warranty shipping gift comfort natural texture balanced practical"
).split(" ");

/** The expected `<h1 class="title">` text of item `id`. */
export function itemTitle(id: number): string {
  const h = mix(id, 1);
  return (
    `${ADJECTIVES[h % ADJECTIVES.length]} ${MATERIALS[(h >>> 8) % MATERIALS.length]} ` +
    `${NOUNS[(h >>> 16) % NOUNS.length]} No. ${id}`
  );
}

/** The expected `<span class="price">` text of item `id`, e.g. "$123.45". */
export function itemPrice(id: number): string {
  const cents = 199 + (mix(id, 2) % 49_800); // $1.99 .. $499.98
  return `$${Math.floor(cents / 100)}.${String(cents % 100).padStart(2, "0")}`;
}

function itemCategory(id: number): string {
  return CATEGORIES[mix(id, 3) % CATEGORIES.length];
}

function sentence(next: () => number): string {
  const len = 8 + (next() % 10);
  const words: string[] = [];
  for (let i = 0; i < len; i++) words.push(WORDS[next() % WORDS.length]);
  const s = words.join(" ");
  return s.charAt(0).toUpperCase() + s.slice(1) + ".";
}

/** The description paragraphs of item `id` (plain text, HTML-safe). */
function itemParagraphs(id: number): string[] {
  const next = prng(mix(id, 4));
  const paragraphs: string[] = [];
  const count = 5;
  for (let p = 0; p < count; p++) {
    const sentences: string[] = [];
    const n = 5 + (next() % 3);
    for (let i = 0; i < n; i++) sentences.push(sentence(next));
    paragraphs.push(sentences.join(" "));
  }
  return paragraphs;
}

/**
 * Five related items of `id` among `n` items: both neighbours, one "popular" item (one of the
 * first 32, so many pages share it) and two hashed picks. Distinct and != id whenever n >= 6.
 */
export function relatedItems(id: number, n: number): number[] {
  if (n <= 0) return [];
  if (n < 6) return [1, 2, 3, 4, 5].map((k) => (id + k) % n);
  const out: number[] = [];
  const add = (c: number): boolean => {
    if (c === id || out.includes(c)) return false;
    out.push(c);
    return true;
  };
  add((id + 1) % n);
  add((id + n - 1) % n);
  for (let salt = 10; out.length < 3 && salt < 20; salt++) add(mix(id, salt) % Math.min(n, 32));
  for (let salt = 20; out.length < 5 && salt < 40; salt++) add(mix(id, salt) % n);
  for (let k = 2; out.length < 5; k++) add((id + k) % n);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------------------------

const STYLE =
  "body{font-family:system-ui,sans-serif;margin:0;color:#222;background:#fafafa}" +
  "header{background:#2d3e50;color:#fff;padding:12px 24px}header .brand{font-weight:700;font-size:20px}" +
  "nav{display:inline-block;margin-left:24px}nav .nav-item{margin-right:16px;color:#dde}" +
  "main{max-width:960px;margin:24px auto;padding:0 24px}.breadcrumb{font-size:13px;color:#666}" +
  ".product{background:#fff;border:1px solid #e4e4e4;border-radius:6px;padding:24px}" +
  ".price{font-size:24px;color:#b12704;font-weight:600}.desc p{line-height:1.5}" +
  ".related ul,.pages ul{list-style:none;padding:0}.related li,.pages li{display:inline-block;margin-right:12px}" +
  ".listing li{padding:6px 0;border-bottom:1px solid #eee}" +
  "footer{border-top:1px solid #ddd;margin-top:32px;padding:16px 24px;font-size:12px;color:#777}";

function head(title: string): string {
  return (
    `<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n` +
    `<meta name="viewport" content="width=device-width, initial-scale=1">\n` +
    `<title>${title} | Mocra Demo Shop</title>\n<style>${STYLE}</style>\n</head>\n<body>\n`
  );
}

const HEADER =
  `<header>\n<span class="brand">Mocra Demo Shop</span>\n<nav>` +
  CATEGORIES.map((c) => `<span class="nav-item">${c}</span>`).join("") +
  `<span class="nav-item">Cart (0)</span></nav>\n</header>\n`;

const FOOTER =
  `<footer>\n<p>Mocra Demo Shop &mdash; a deterministic test site for the mocra crawler. ` +
  `All products are fictional. Prices include VAT. Free shipping on orders over $50.</p>\n` +
  `<p>Customer service: Monday to Friday, 9:00&ndash;17:00. Returns accepted within 30 days.</p>\n` +
  `</footer>\n</body>\n</html>\n`;

function renderItem(id: number, n: number, perPage: number): string {
  const pages = Math.ceil(n / perPage);
  const title = itemTitle(id);
  const price = itemPrice(id);
  const category = itemCategory(id);
  const ownPage = Math.floor(id / perPage);
  const nextPage = (ownPage + 1) % pages;
  const paragraphs = itemParagraphs(id);
  const sku = `MDS-${String(id).padStart(6, "0")}`;
  const stock = mix(id, 5) % 40;
  const rating = (30 + (mix(id, 6) % 21)) / 10;
  const related = relatedItems(id, n)
    .map(
      (r) =>
        `<li class="related-item"><a href="/item/${r}">${itemTitle(r)}</a> ` +
        `<span class="related-price">${itemPrice(r)}</span></li>`,
    )
    .join("\n");
  return (
    head(title) +
    HEADER +
    `<main>\n<div class="breadcrumb"><a href="/list/0">Home</a> &rsaquo; ${category} &rsaquo; ` +
    `<a href="/list/${ownPage}">Page ${ownPage + 1}</a> &rsaquo; ${title}</div>\n` +
    `<article class="product" data-id="${id}" data-sku="${sku}">\n` +
    `<h1 class="title">${title}</h1>\n` +
    `<p class="meta">SKU <span class="sku">${sku}</span> &middot; Category ` +
    `<span class="category">${category}</span> &middot; Rating <span class="rating">${rating.toFixed(1)}</span>/5</p>\n` +
    `<p class="buy"><span class="price">${price}</span> ` +
    `<span class="stock">${stock > 0 ? `${stock} in stock` : "Out of stock"}</span> ` +
    `<button type="button" class="add-to-cart">Add to cart</button></p>\n` +
    `<div class="desc">\n${paragraphs.map((p) => `<p>${p}</p>`).join("\n")}\n</div>\n` +
    `<table class="specs"><tr><th>Material</th><td>${title.split(" ")[1]}</td></tr>` +
    `<tr><th>Weight</th><td>${(1 + (mix(id, 7) % 5000)) / 100} kg</td></tr>` +
    `<tr><th>Ships in</th><td>${1 + (mix(id, 8) % 7)} days</td></tr></table>\n` +
    `</article>\n` +
    `<section class="related">\n<h2>Customers also viewed</h2>\n<ul>\n${related}\n</ul>\n</section>\n` +
    `<section class="pages"><a class="more" href="/list/${nextPage}">More products</a></section>\n` +
    `</main>\n` +
    FOOTER
  );
}

function renderList(page: number, n: number, perPage: number): string {
  const pages = Math.ceil(n / perPage);
  const first = page * perPage;
  const last = Math.min(n, first + perPage);
  const rows: string[] = [];
  for (let id = first; id < last; id++) {
    rows.push(
      `<li class="product-card" data-id="${id}"><a class="product-link" href="/item/${id}">${itemTitle(id)}</a> ` +
        `<span class="price">${itemPrice(id)}</span></li>`,
    );
  }
  const next =
    page + 1 < pages ? `<a class="next" rel="next" href="/list/${page + 1}">Next page</a>` : "";
  return (
    head(`Products, page ${page + 1}`) +
    HEADER +
    `<main>\n<h1 class="page-title">All products &mdash; page ${page + 1} of ${pages}</h1>\n` +
    `<ul class="listing">\n${rows.join("\n")}\n</ul>\n<div class="pager">${next}</div>\n</main>\n` +
    FOOTER
  );
}

// ---------------------------------------------------------------------------------------------
// Server
// ---------------------------------------------------------------------------------------------

const HTML = "text/html; charset=utf-8";
const TEXT = "text/plain; charset=utf-8";
const ROBOTS = Buffer.from("User-agent: *\nAllow: /\n");
const NOT_FOUND = Buffer.from(
  head("Not found") + HEADER + `<main>\n<h1>404 Not Found</h1>\n</main>\n` + FOOTER,
);
const REDIRECT_BODY = Buffer.from("Found. Redirecting to /list/0\n");
const NOT_ALLOWED = Buffer.from("Method Not Allowed\n");

/** Parses a canonical non-negative decimal ("0", "17"; not "007", "+1", "1e3"). */
function parseIndex(s: string): number {
  if (s.length === 0 || s.length > 9) return -1;
  if (s.length > 1 && s.charCodeAt(0) === 48) return -1;
  let v = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return -1;
    v = v * 10 + c;
  }
  return v;
}

function positiveInt(value: number | undefined, fallback: number, name: string, min: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < min) {
    throw new RangeError(`startShop: ${name} must be an integer >= ${min}, got ${value}`);
  }
  return value;
}

export async function startShop(options: ShopOptions = {}): Promise<ShopServer> {
  const n = positiveInt(options.items, 200, "items", 0);
  const perPage = positiveInt(options.perPage, 50, "perPage", 1);
  const latencyMs = positiveInt(options.latencyMs, 0, "latencyMs", 0);
  const host = options.host ?? "127.0.0.1";
  const port = positiveInt(options.port, 0, "port", 0);
  const pages = Math.ceil(n / perPage);

  const cache = n <= SHOP_CACHE_MAX_ITEMS;
  const itemCache: (Buffer | undefined)[] = cache ? new Array<Buffer | undefined>(n) : [];
  const listCache: (Buffer | undefined)[] = cache ? new Array<Buffer | undefined>(pages) : [];

  const hits = new Map<string, number>();
  let totalHits = 0;
  const sockets = new Set<Socket>();
  const timers = new Set<ReturnType<typeof setTimeout>>();
  let closing: Promise<void> | undefined;

  function itemPage(id: number): Buffer {
    if (!cache) return Buffer.from(renderItem(id, n, perPage));
    return (itemCache[id] ??= Buffer.from(renderItem(id, n, perPage)));
  }
  function listPage(p: number): Buffer {
    if (!cache) return Buffer.from(renderList(p, n, perPage));
    return (listCache[p] ??= Buffer.from(renderList(p, n, perPage)));
  }

  function send(
    req: IncomingMessage,
    res: ServerResponse,
    status: number,
    type: string,
    body: Buffer,
    extra?: Record<string, string>,
  ): void {
    const headers: Record<string, string | number> = {
      "Content-Type": type,
      "Content-Length": body.length,
    };
    if (extra) Object.assign(headers, extra);
    res.writeHead(status, headers);
    if (req.method === "HEAD") res.end();
    else res.end(body);
  }

  function respond(req: IncomingMessage, res: ServerResponse, path: string): void {
    if (req.method !== "GET" && req.method !== "HEAD") {
      send(req, res, 405, TEXT, NOT_ALLOWED, { Allow: "GET, HEAD" });
      return;
    }
    if (path.startsWith("/item/")) {
      const id = parseIndex(path.slice(6));
      if (id >= 0 && id < n) return send(req, res, 200, HTML, itemPage(id));
    } else if (path.startsWith("/list/")) {
      const p = parseIndex(path.slice(6));
      if (p >= 0 && p < pages) return send(req, res, 200, HTML, listPage(p));
    } else if (path === "/robots.txt") {
      return send(req, res, 200, TEXT, ROBOTS);
    } else if (path === "/") {
      return send(req, res, 302, TEXT, REDIRECT_BODY, { Location: "/list/0" });
    }
    send(req, res, 404, HTML, NOT_FOUND);
  }

  const server = createServer((req, res) => {
    const raw = req.url ?? "/";
    const q = raw.indexOf("?");
    const path = q < 0 ? raw : raw.slice(0, q);
    hits.set(path, (hits.get(path) ?? 0) + 1);
    totalHits++;
    if (latencyMs <= 0) {
      respond(req, res, path);
      return;
    }
    const timer = setTimeout(() => {
      timers.delete(timer);
      if (!res.destroyed) respond(req, res, path);
    }, latencyMs);
    timers.add(timer);
  });
  server.keepAliveTimeout = 30_000;
  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.setNoDelay(true);
    socket.once("close", () => sockets.delete(socket));
  });

  return new Promise<ShopServer>((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    server.once("error", onError);
    server.listen(port, host, () => {
      server.off("error", onError);
      const address = server.address();
      const boundPort = typeof address === "object" && address !== null ? address.port : port;
      const hostPart = host.includes(":") ? `[${host}]` : host;
      const url = `http://${hostPart}:${boundPort}`;
      resolve({
        url,
        hits,
        get totalHits() {
          return totalHits;
        },
        close(): Promise<void> {
          closing ??= new Promise<void>((done) => {
            for (const t of timers) clearTimeout(t);
            timers.clear();
            server.close(() => done());
            const s = server as { closeAllConnections?: () => void };
            if (typeof s.closeAllConnections === "function") s.closeAllConnections();
            for (const socket of sockets) socket.destroy();
            sockets.clear();
          });
          return closing;
        },
      });
    });
  });
}
