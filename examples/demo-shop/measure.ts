/**
 * Measures how many pages/s the demo shop serves: a closed loop of `--concurrency` (default 64)
 * keep-alive workers fetching /item/ID round-robin (plus a list page every 50 requests) for
 * `--seconds` (default 5, after a warm-up of at least 1 s and one full pass over the items).
 *
 *   tsx examples/demo-shop/measure.ts [--url http://127.0.0.1:PORT] [--items N] [--client fetch|http]
 *                           [--concurrency C] [--seconds S]
 *
 * Without --url the shop runs in this same process (client and server then share one thread,
 * so that number is a lower bound); start `examples/demo-shop/serve.ts` separately and pass --url to
 * measure the server process alone. `--client fetch` uses node's built-in fetch (undici),
 * `--client http` node:http with a keep-alive Agent (cheaper per request on the client side).
 */
import http from "node:http";
import process from "node:process";
import { startShop, type ShopServer } from "./shop.ts";

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

const items = Number(arg("items", "5000"));
const concurrency = Number(arg("concurrency", "64"));
const seconds = Number(arg("seconds", "5"));
const client = arg("client", "fetch");
let shop: ShopServer | undefined;
let base = arg("url", "");
if (!base) {
  shop = await startShop({ items });
  base = shop.url;
}

const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });

function getHttp(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent }, (res) => {
        let bytes = 0;
        res.on("data", (c: Buffer) => (bytes += c.length));
        res.on("end", () => resolve(bytes));
        res.on("error", reject);
      })
      .on("error", reject);
  });
}

async function getFetch(url: string): Promise<number> {
  const res = await fetch(url);
  return (await res.arrayBuffer()).byteLength;
}

const get = client === "http" ? getHttp : getFetch;
const pages = Math.ceil(items / 50);
let next = 0;
let count = 0;
let bytes = 0;
let stop = false;

async function worker(): Promise<void> {
  while (!stop) {
    const k = next++;
    const path = k % 50 === 49 ? `/list/${k % pages}` : `/item/${k % items}`;
    const b = await get(base + path);
    bytes += b;
    count++;
  }
}

const workers = Array.from({ length: concurrency }, () => worker());
// Warm-up: at least 1 s and one full pass over the items (fills the page cache).
const warmStart = performance.now();
while (performance.now() - warmStart < 1000 || next < items + 64) {
  await new Promise((r) => setTimeout(r, 50));
}
const c0 = count;
const b0 = bytes;
const t0 = performance.now();
await new Promise((r) => setTimeout(r, seconds * 1000));
const elapsed = (performance.now() - t0) / 1000;
const n = count - c0;
const mb = (bytes - b0) / 1e6;
stop = true;
await Promise.all(workers);
process.stdout.write(
  `${client} c=${concurrency} ${shop ? "in-process" : base}: ${Math.round(n / elapsed)} pages/s, ` +
    `${(mb / elapsed).toFixed(1)} MB/s (${n} pages in ${elapsed.toFixed(2)} s)\n`,
);
agent.destroy();
await shop?.close();
