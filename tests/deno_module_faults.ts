// A parse that loops on the CPU, on the runtime that runs this file (`deno task test` runs it on
// Deno; `npx tsx tests/deno_module_faults.ts` on Node): run-standalone is a real process of that
// runtime; its watchdog thread ends the blocked process, the supervisor resumes it, the page is
// dead-lettered with its reason after request_max_retries, and every other page is stored.
import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

const runtime = "Deno" in globalThis ? "deno" : "node";
const ROOT = fileURLToPath(new URL("..", import.meta.url));
function check(cond: boolean, what: string, output = ""): void {
  if (!cond) {
    console.error(`module-faults check FAILED on ${runtime}: ${what}\n${output}`);
    process.exit(1);
  }
}

const PAGES = 6;
const server = createServer((req, res) => {
  res.writeHead(200, { "content-type": "text/html" });
  res.end(req.url === "/" ? [...Array.from({ length: PAGES }, (_, i) => `<a href="/p/${i}">${i}</a>`), `<a href="/bad">bad</a>`].join("") : `<h1>${req.url}</h1>`);
});
await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
const dir = await mkdtemp(join(tmpdir(), "mocra-deno-faults-"));
await writeFile(
  join(dir, "looping.ts"),
  `import { defineModule } from ${JSON.stringify(join(ROOT, "src/modules/define.ts"))};
export default defineModule({
  name: "looping",
  settings: { url: "" },
  start: (ctx) => [String(ctx.settings.url) + "/"],
  parse(page, ctx) {
    if (page.url.endsWith("/bad")) for (;;) {}
    if (page.url.endsWith("/")) ctx.follow(page.links("a"));
    else ctx.emit({ url: page.url });
  },
});\n`,
);
await writeFile(
  join(dir, "config.toml"),
  `name = "deno_faults"\n[crawler]\nmodule_paths = [${JSON.stringify(dir)}]\nobey_robots_txt = false\nparse_timeout_secs = 2\nrequest_max_retries = 2\n` +
    `[output]\npath = ${JSON.stringify(join(dir, "out"))}\n[state]\ndir = ${JSON.stringify(join(dir, "state"))}\n[modules.looping]\nurl = ${JSON.stringify(url)}\n`,
);
const args = ["src/cli.ts", "run-standalone", "--config", join(dir, "config.toml"), "--module", "looping"];
const child = runtime === "deno" ? spawn(process.execPath, ["run", "-A", ...args], { cwd: ROOT }) : spawn(process.execPath, ["--import", "tsx", ...args], { cwd: ROOT });
let out = "";
child.stdout!.on("data", (d: Uint8Array) => (out += new TextDecoder().decode(d)));
child.stderr!.on("data", (d: Uint8Array) => (out += new TextDecoder().decode(d)));
const killer = setTimeout(() => child.kill("SIGKILL"), 120_000);
const code = await new Promise<number | null>((r) => child.on("exit", (c) => r(c)));
clearTimeout(killer);
server.close();
check(code === 0, `run-standalone exited ${code} (before the watchdog it hung for ever)`, out);
check((out.match(/watchdog: parse of/g) ?? []).length === 2, "the watchdog ended the process once per delivery (2)", out);
const items = (await readFile(join(dir, "out", "looping.jsonl"), "utf8")).split("\n").filter(Boolean);
check(items.length === PAGES, `${items.length} items, expected ${PAGES}`, out);
const dead = (await readFile(join(dir, "out", "dead_letters.jsonl"), "utf8")).split("\n").filter(Boolean).map((l) => JSON.parse(l) as { reason: string });
check(dead.length === 1 && /^parse timed out after 2 s: it blocked the process/.test(dead[0].reason), `dead letters ${JSON.stringify(dead)}`, out);
await rm(dir, { recursive: true, force: true });
console.log(`module faults on ${runtime}: a CPU-looping parse was ended twice by the watchdog, dead-lettered with its reason; ${PAGES} other pages stored`);
