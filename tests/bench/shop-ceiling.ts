// tests/bench/shop-ceiling.ts: how many pages/s the mock shop serves to a cheap client: a closed
// loop of --concurrency (64) requests on an undici Pool, /item/ID round-robin plus a list page every
// 50 requests, --seconds (3) after a warm-up pass. Prints RESULT {"pages","ms","allPages"} (allPages: warm-up included).
import { Pool } from "undici";
import { argValue, numArg, printResult } from "./common.ts";

const url = argValue("url");
if (!url) throw new Error("--url is required");
const items = numArg("items", 20_000);
const concurrency = numArg("concurrency", 64);
const seconds = numArg("seconds", 3);
const pool = new Pool(url, { connections: concurrency, pipelining: 1 });
const lists = Math.ceil(items / 50);

let next = 0;
let count = 0;
let stop = false;
async function loop(): Promise<void> {
  while (!stop) {
    const k = next++;
    const path = k % 50 === 49 ? `/list/${k % lists}` : `/item/${k % items}`;
    const res = await pool.request({ path, method: "GET" });
    await res.body.arrayBuffer();
    count++;
  }
}

const loops = Array.from({ length: concurrency }, () => loop());
// warm-up: 1 s (pages are rendered and cached by the shop on first request)
await new Promise((r) => setTimeout(r, 1000));
const c0 = count;
const t0 = performance.now();
await new Promise((r) => setTimeout(r, seconds * 1000));
const ms = performance.now() - t0;
const pages = count - c0;
stop = true;
await Promise.all(loops);
await pool.close();
printResult({ pages, ms, allPages: count });
