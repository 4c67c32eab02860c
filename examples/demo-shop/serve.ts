/**
 * Runs the demo shop in its own process (for benchmarks that keep the mock out of the
 * process under test).
 *
 *   tsx examples/demo-shop/serve.ts [--items N] [--per-page N] [--latency MS] [--host H] [--port P]
 *   deno run -A examples/demo-shop/serve.ts ...
 *
 * Prints exactly one line `SHOP_URL <url>` to stdout once listening; exits 0 on SIGTERM/SIGINT
 * after closing the server. Errors go to stderr with exit code 2 (usage) or 1 (startup).
 * With --stats, one line `SHOP_STATS hits=<requests> cpu_ms=<user+system CPU since listening>
 * us_per_hit=<...>` goes to stderr on exit (to check that the mock is not the bottleneck).
 */
import process from "node:process";
import { startShop, type ShopOptions } from "./shop.ts";

const USAGE =
  "usage: serve.ts [--items N] [--per-page N] [--latency MS] [--host HOST] [--port PORT] [--stats]";

let stats = false;

function parseArgs(argv: readonly string[]): ShopOptions {
  const options: ShopOptions = {};
  for (let i = 0; i < argv.length; i++) {
    let flag = argv[i];
    if (flag === "--stats") {
      stats = true;
      continue;
    }
    let value: string | undefined;
    const eq = flag.indexOf("=");
    if (flag.startsWith("--") && eq > 0) {
      value = flag.slice(eq + 1);
      flag = flag.slice(0, eq);
    }
    if (flag === "--help" || flag === "-h") {
      process.stdout.write(USAGE + "\n");
      process.exit(0);
    }
    if (!["--items", "--per-page", "--latency", "--port", "--host"].includes(flag)) {
      throw new Error(`unknown argument ${flag}`);
    }
    value ??= argv[++i];
    if (value === undefined) throw new Error(`missing value for ${flag}`);
    const int = (): number => {
      if (!/^\d+$/.test(value)) throw new Error(`${flag} expects a non-negative integer, got ${value}`);
      return Number(value);
    };
    switch (flag) {
      case "--items":
        options.items = int();
        break;
      case "--per-page":
        options.perPage = int();
        break;
      case "--latency":
        options.latencyMs = int();
        break;
      case "--port":
        options.port = int();
        break;
      case "--host":
        options.host = value;
        break;
      default:
        throw new Error(`unknown argument ${flag}`);
    }
  }
  return options;
}

let options: ShopOptions;
try {
  options = parseArgs(process.argv.slice(2));
} catch (err) {
  process.stderr.write(`${(err as Error).message}\n${USAGE}\n`);
  process.exit(2);
}

try {
  const shop = await startShop(options);
  const cpuAtStart = process.cpuUsage();
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    if (stats) {
      const cpu = process.cpuUsage(cpuAtStart);
      const us = cpu.user + cpu.system;
      const hits = shop.totalHits;
      process.stderr.write(
        `SHOP_STATS hits=${hits} cpu_ms=${Math.round(us / 1000)} ` +
          `us_per_hit=${hits > 0 ? (us / hits).toFixed(1) : "n/a"}\n`,
      );
    }
    const force = setTimeout(() => process.exit(0), 2_000);
    force.unref?.();
    shop.close().then(
      () => process.exit(0),
      () => process.exit(0),
    );
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  process.stdout.write(`SHOP_URL ${shop.url}\n`);
} catch (err) {
  process.stderr.write(`serve.ts: cannot start the shop: ${(err as Error).message}\n`);
  process.exit(1);
}
