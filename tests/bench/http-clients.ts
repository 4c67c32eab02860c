// tests/bench/http-clients.ts: client-side CPU per page of the HTTP clients a crawler could use,
// against the mock shop: a closed loop of --concurrency (64) GETs of item pages, body read as text,
// for --seconds (3) per client after a 1 s warm-up. Clients:
//   undici-pool    undici Pool.request (what the bare loop uses)
//   undici-request undici.request (global dispatcher)
//   fetch          Node's global fetch (undici's fetch inside Node)
//   ky             ky over the global fetch (what mocra's HttpClient uses)
//   mocra          mocra's HttpClient.fetch(Request) (ky + AbortController timeout + header/cookie
//                  handling + Response building)
// Prints RESULT [{client, reqPerSec, cpuUsPerReq}].
import ky from "ky";
import { Pool, request as undiciRequest } from "undici";
import { defaultConfig } from "../../src/config/index.ts";
import { createHttpClient } from "../../src/engine/standalone.ts";
import { request } from "../../src/model/index.ts";
import { argValue, numArg, printResult } from "./common.ts";

const base = argValue("url");
if (!base) throw new Error("--url is required");
const items = numArg("items", 20_000);
const concurrency = numArg("concurrency", 64);
const seconds = numArg("seconds", 3);
const only = (argValue("clients") ?? "undici-pool,undici-request,fetch,ky,mocra").split(",");

const pool = new Pool(base, { connections: concurrency });
const config = defaultConfig();
// the mock shop is on 127.0.0.1: private networks are crawled only when the crawl names the host
config.downloadConfig.allowPrivateHosts = [new URL(base).hostname];
const http = createHttpClient(config);
const clients: Record<string, (path: string) => Promise<number>> = {
  "undici-pool": async (path) => (await (await pool.request({ path, method: "GET" })).body.text()).length,
  "undici-request": async (path) => (await (await undiciRequest(base + path)).body.text()).length,
  fetch: async (path) => (await (await fetch(base + path)).text()).length,
  ky: async (path) => (await ky(base + path, { retry: 0, timeout: false, throwHttpErrors: false }).text()).length,
  mocra: async (path) => (await http.fetch(request({ url: base + path }))).content.byteLength,
};

async function measure(name: string): Promise<{ client: string; reqPerSec: number; cpuUsPerReq: number }> {
  const get = clients[name];
  let next = 0;
  let count = 0;
  let stop = false;
  const loop = async () => {
    while (!stop) {
      await get(`/item/${next++ % items}`);
      count++;
    }
  };
  const loops = Array.from({ length: concurrency }, loop);
  await new Promise((r) => setTimeout(r, 1000));
  const c0 = count;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const n = count - c0;
  stop = true;
  await Promise.all(loops);
  return { client: name, reqPerSec: (n / ms) * 1000, cpuUsPerReq: (cpu.user + cpu.system) / n };
}

const out = [];
for (const name of only) out.push(await measure(name));
await pool.close();
printResult(out);
process.exit(0);
