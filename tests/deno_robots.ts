// robots.txt on Deno (run by `deno task test`): the RFC 9309 conformance table, and robots.txt
// fetched over real HTTP through Deno's transport — redirects up to five hops, the 500 KiB cut.
import { createServer, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import process from "node:process";
import { defaultConfig } from "../src/config/index.ts";
import { parseRobotsTxt } from "../src/download/robots.ts";
import { createPoliteness } from "../src/engine/politeness.ts";
import { ROBOTS_CASES } from "./fixtures/robots-cases.ts";

const runtime = "Deno" in globalThis ? "deno" : "node";
const failures: string[] = [];
const check = (cond: boolean, what: string) => void (cond || failures.push(what));

for (const c of ROBOTS_CASES) check(parseRobotsTxt(c.body, c.agent).isAllowed(c.url) === c.allowed, `table: ${c.name}`);

async function serve(handler: (path: string, res: ServerResponse) => void): Promise<{ url: string; close: () => void }> {
  const server = createServer((req, res) => handler(req.url ?? "/", res));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => server.close() };
}

const big = `User-agent: *\nDisallow: /early\n${"# padding\n".repeat(60_000)}Disallow: /late\n`;
const target = await serve((path, res) => res.writeHead(200, { "content-type": "text/plain" }).end(path === "/robots.txt" ? "User-agent: *\nDisallow: /private\n" : ""));
const chain = (n: number) =>
  serve((path, res) => {
    const at = path === "/robots.txt" ? 0 : Number(path.split("/")[2]);
    res.writeHead(301, { location: at + 1 < n ? `/r/${at + 1}` : `${target.url}/robots.txt` }).end();
  });
const five = await chain(5);
const six = await chain(6);
const large = await serve((_path, res) => res.writeHead(200, { "content-type": "text/plain" }).end(big));
const config = defaultConfig();
// the test servers are on loopback, which a crawl reaches only when it names the host
config.downloadConfig.allowPrivateHosts = ["127.0.0.1", "localhost"];
const { robots } = createPoliteness(config);
check((await robots.check(`${five.url}/private/1`)).allowed === false, "five redirects: the target's rules are obeyed");
check((await robots.check(`${five.url}/public`)).allowed === true, "five redirects: other paths allowed");
check((await robots.check(`${six.url}/private/1`)).allowed === true, "six redirects: taken as unavailable (allow all)");
check((await robots.check(`${large.url}/early`)).allowed === false, "over 500 KiB: the first rules are read");
check((await robots.check(`${large.url}/late`)).allowed === true, "over 500 KiB: what lies past is not");
for (const s of [target, five, six, large]) s.close();

if (failures.length > 0) {
  console.error(`deno robots test FAILED on ${runtime}:\n  ${failures.join("\n  ")}`);
  process.exit(1);
}
console.log(`deno robots test passed on ${runtime}: ${ROBOTS_CASES.length} RFC 9309 cases, redirects and the 500 KiB cut over HTTP`);
process.exit(0);
