// Issue 23 on the runtime that runs this file (`deno task test` runs it on Deno; `npx tsx
// tests/deno_trust_boundaries.ts` on Node): private networks are opt-in on the address actually
// connected to (Deno's fetch has no hook there: the checked hops go through undici's connector),
// and the cookie jar keeps loopback cookies with their host, path and expiry.
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { type Config, defaultConfig } from "../src/config/index.ts";
import { runStandalone } from "../src/engine/standalone.ts";
import { defineModule } from "../src/modules/define.ts";
import { ModuleRegistry } from "../src/modules/registry.ts";
import { parseSetCookies } from "../src/model/cookies.ts";
import { loopbackLinks, startCookieSite, startDualStackServer } from "./fixtures/trust-sites.ts";

const runtime = "Deno" in globalThis ? "deno" : "node";
function check(cond: boolean, what: string): void {
  if (!cond) {
    console.error(`trust-boundaries check FAILED on ${runtime}: ${what}`);
    process.exit(1);
  }
}

function listen(handler: (req: IncomingMessage, res: ServerResponse) => void, host = "127.0.0.1", port = 0): Promise<Server | undefined> {
  const s = createServer(handler);
  return new Promise((resolve) => {
    s.once("error", () => resolve(undefined));
    s.listen(port, host, () => resolve(s));
  });
}
const portOf = (s: Server) => (s.address() as AddressInfo).port;
const close = (s: Server | undefined) => new Promise<void>((r) => (s ? s.close(() => r()) : r()));
function html(res: ServerResponse, body: string): void {
  res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
  res.end(body);
}

async function crawlOnce(name: string, start: string, patch: (c: Config) => void): Promise<void> {
  const config = defaultConfig();
  config.output.path = await mkdtemp(join(tmpdir(), "mocra-trust-"));
  config.crawler.retryBaseDelayMs = 50;
  config.crawler.obeyRobotsTxt = false;
  patch(config);
  const mod = defineModule({
    name,
    start: () => [start],
    parse(page, ctx) {
      ctx.follow(page.links());
    },
  });
  const registry = new ModuleRegistry({}).register(mod as never);
  await runStandalone({ config, registry, modules: [name] });
  await rm(config.output.path, { recursive: true, force: true });
}

// private networks: started at localhost:A, the links to port B (v4 and v6 loopback) are refused
{
  const b = await startDualStackServer();
  const a = (await listen((req, res) => html(res, req.url === "/" ? loopbackLinks(b.port) : "none")))!;
  await crawlOnce("ssrf", `http://localhost:${portOf(a)}/`, () => {});
  check(b.hits.length === 0, `requests reached port B: ${b.hits.join(", ")}`);
  await crawlOnce("ssrf_allowed", `http://localhost:${portOf(a)}/`, (c) => (c.downloadConfig.allowPrivateHosts = ["127.0.0.1"]));
  check(b.hits.includes(`127.0.0.1:${b.port}/p0`), `with allow_private_hosts = ["127.0.0.1"] port B was not reached: ${b.hits.join(", ")}`);
  await Promise.all([close(a), b.close()]);
}

// cookies: parsed and matched by RFC 6265
{
  check(parseSetCookies(["s=1; Domain=bank.example"], "http://www.evil.example/").length === 0, "Domain=bank.example from evil.example stored");
  check(parseSetCookies(["s=1; Domain=com"], "http://www.evil.com/").length === 0, "Domain=com stored");
  const gone = parseSetCookies(["s=1; Max-Age=-1"], "http://shop.example/");
  check(gone.length === 1 && gone[0].expires === 0, "Max-Age=-1 is not an expired cookie");
  const site = await startCookieSite();
  await crawlOnce("cookies", `${site.url}/dir/set`, (c) => (c.downloadConfig.allowPrivateHosts = ["localhost"]));
  const seen = site.seen;
  check(seen.get("localhost/check") === "", `cookies of 127.0.0.1 sent to localhost: ${seen.get("localhost/check")}`);
  check(seen.get("127.0.0.1/other") === "ho=1", `/other got ${seen.get("127.0.0.1/other")}`);
  check(seen.get("127.0.0.1/dir/next") === "de=1; dp=1; ho=1", `/dir/next got ${seen.get("127.0.0.1/dir/next")}`);
  await site.close();
}

console.log(`trust boundaries (${runtime}): private networks refused by address, cookies by RFC 6265: ok`);
process.exit(0);
