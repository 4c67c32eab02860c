// The default HTTP transport per runtime (the one place that knows):
// - Node: undici's dispatcher API (`Agent.request`) with `pool_size` connections per origin and
//   keep-alive; compressed bodies are decoded here with node:zlib. Measured on the benchmark
//   workload it costs ~100 µs of CPU per request against ~440 µs for Node 20's global fetch and
//   ~690 µs for ky over it (tests/benchmark_compare.ts), the largest single cost of a page.
// - Deno: ky over Deno's native fetch, unless addresses are checked (private networks are
//   opt-in, docs/security.md): then undici as on Node, because its connector takes a DNS
//   lookup function and Deno's fetch has no hook on the address it connects to.
import dns from "node:dns";
import { isIpLiteral, nonPublicAddress } from "./ip-ranges.ts";
import { fetchTransport } from "./ky-transport.ts";
import type { HopRequest, HopResponse, Transport } from "./transport.ts";
import type { Agent, Dispatcher } from "undici";
import { runtime } from "./index.ts";

/**
 * The runtime's transport. A hop with `checkAddresses` goes through an undici Agent whose
 * connector resolves the host itself and refuses non-public addresses (on Deno too: its fetch
 * has no hook on the address it connects to); other hops use the plain pool.
 */
export function defaultTransport(poolSize: number): Transport {
  const plain = runtime === "deno" ? fetchTransport() : nodeTransport(poolSize, false);
  let checked: Transport | undefined;
  return {
    send(url, init) {
      return init.checkAddresses ? (checked ??= nodeTransport(poolSize, true)).send(url, init) : plain.send(url, init);
    },
    async close() {
      await Promise.all([plain.close?.(), checked?.close?.()]);
    },
  };
}

/** A connection refused because the address is not public (HttpClient makes it a DownloadError). */
export class AddressRefused extends Error {
  override name = "AddressRefused";
}

/**
 * The refusal for connecting to `address` (what `host` resolved to, or the host itself when it is
 * an IP literal) of a host the crawl does not name, or undefined for a public address.
 */
export function addressRefusal(host: string, address: string): AddressRefused | undefined {
  const kind = nonPublicAddress(address);
  if (kind === undefined) return undefined;
  const h = host.toLowerCase().replace(/^\[(.*)\]$/, "$1").replace(/\.$/, "");
  const a = address.toLowerCase().replace(/^\[(.*)\]$/, "$1");
  const what = h === a ? `${address} is` : `${h} resolves to ${address},`;
  return new AddressRefused(
    `refused: ${what} a ${kind} address; private networks are crawled only when the crawl names the host (a start URL, a module's allowedDomains, download_config.allow_private_hosts) or with download_config.allow_private_networks = true`,
  );
}

type LookupCallback = (err: Error | null, address: string | dns.LookupAddress[], family?: number) => void;

/**
 * A `lookup` for net.connect that resolves as dns.lookup does and fails the connection when any
 * address is not public: the address checked is the address connected to (no rebinding between).
 */
function checkedLookup(hostname: string, options: dns.LookupOptions, callback: LookupCallback): void {
  dns.lookup(hostname, { ...options, all: true }, (err, addresses) => {
    if (err) return callback(err, []);
    for (const a of addresses) {
      const refused = addressRefusal(hostname, a.address);
      if (refused) return callback(refused, []);
    }
    if (options.all) return callback(null, addresses);
    if (addresses.length === 0) return callback(Object.assign(new Error(`no address for ${hostname}`), { code: "ENOTFOUND" }), []);
    callback(null, addresses[0].address, addresses[0].family);
  });
}

type UndiciBody = AsyncIterable<Uint8Array> & { destroy(err?: Error): void; on(event: "error", f: () => void): void };

function nodeTransport(poolSize: number, checkAddresses: boolean): Transport {
  let agent: Promise<Agent> | undefined;
  const getAgent = () =>
    (agent ??= import("undici").then(
      (undici) => new undici.Agent({ connections: poolSize, keepAliveTimeout: 30_000, connect: checkAddresses ? { lookup: checkedLookup } : undefined }),
    ));
  return {
    async send(url: string, init: HopRequest): Promise<HopResponse> {
      const u = new URL(url);
      // an IP literal is connected to without a lookup: checked here (the URL parser has already
      // turned 0x7f.1, 2130706433 and 127.1 into 127.0.0.1)
      if (checkAddresses && isIpLiteral(u.hostname)) {
        const refused = addressRefusal(u.hostname, u.hostname.replace(/^\[|\]$/g, ""));
        if (refused) throw refused;
      }
      const res = await (await getAgent()).request({
        origin: u.origin,
        path: u.pathname + u.search,
        method: init.method as Dispatcher.HttpMethod,
        headers: init.headers,
        body: init.body,
        // undici takes the Deadline itself (EventEmitter-like): no AbortSignal per request
        signal: init.deadline as unknown as Dispatcher.RequestOptions["signal"],
        // HttpClient's deadline covers headers and body; undici's own timers stay out of the way
        headersTimeout: 0,
        bodyTimeout: 0,
      });
      const headers: Array<[string, string]> = [];
      let setCookies: string[] = [];
      for (const [k, v] of Object.entries(res.headers)) {
        if (v === undefined) continue;
        if (k === "set-cookie") setCookies = Array.isArray(v) ? v : [v];
        else headers.push([k, Array.isArray(v) ? v.join(", ") : v]);
      }
      const encoding = res.headers["content-encoding"];
      const noBody = init.method === "HEAD" || res.statusCode === 204 || res.statusCode === 304;
      return {
        status: res.statusCode,
        headers,
        setCookies,
        body: noBody ? null : await decoded(res.body, typeof encoding === "string" ? encoding : undefined),
        cancel: async () => {
          res.body.on("error", () => {}); // destroying a body makes it emit an abort error: expected
          res.body.destroy();
        },
      };
    },
    async close() {
      if (agent) await (await agent).close();
    },
  };
}

/** The body with its content-encoding (gzip, deflate, br) undone. */
async function decoded(body: UndiciBody, encoding: string | undefined): Promise<AsyncIterable<Uint8Array>> {
  const enc = encoding?.trim().toLowerCase();
  if (!enc || enc === "identity") return body;
  const zlib = await import("node:zlib");
  const { Readable } = await import("node:stream");
  const source = Readable.from(body);
  const decoder =
    enc === "gzip" || enc === "x-gzip"
      ? zlib.createGunzip()
      : enc === "deflate"
        ? zlib.createInflate()
        : enc === "br"
          ? zlib.createBrotliDecompress()
          : undefined;
  if (!decoder) return body; // unknown coding: hand the bytes over as they came
  source.on("error", (err) => decoder.destroy(err));
  return source.pipe(decoder);
}
