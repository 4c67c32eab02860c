import process from "node:process";
import { parseArgs } from "node:util";
import { startShop } from "../demo/shop.ts";
import { summaryText } from "../engine/progress.ts";
import { runStandalone } from "../engine/standalone.ts";
import { onShutdownSignal } from "../runtime/index.ts";
import { loadConfigFrom, loadRegistry, UsageError } from "./common.ts";

export const usage = `usage: run-standalone [--config PATH] [--module NAME]... [--demo [--items N]]

Crawls in this process on in-memory queues until the work is drained, then prints a summary.
No Redis needed.

  --config PATH   config file (default: ./config.toml if present, else built-in defaults)
  --module NAME   run this module (repeatable; default: every module found)
  --demo          serve the bundled demo shop on 127.0.0.1 and crawl it with modules/demo_shop.ts
  --items N       with --demo: items in the demo shop (default 200)
  -h, --help      this help

Ctrl-C stops taking new work, lets in-flight pages finish, and prints the summary.`;

export async function runStandaloneCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      config: { type: "string" },
      module: { type: "string", multiple: true },
      demo: { type: "boolean" },
      items: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(usage);
    return 0;
  }
  const config = await loadConfigFrom(values.config);
  let modules = values.module ?? [];
  const overrides: Record<string, Record<string, unknown>> = {};
  let shop: Awaited<ReturnType<typeof startShop>> | undefined;
  if (values.demo) {
    const items = values.items === undefined ? 200 : Number(values.items);
    if (!Number.isInteger(items) || items < 1) throw new UsageError(`--items must be a whole number >= 1, got ${values.items}`);
    shop = await startShop({ items });
    console.error(`demo shop with ${items} items serving at ${shop.url}`);
    overrides.demo_shop = { start_url: `${shop.url}/list/0` };
    if (modules.length === 0) modules = ["demo_shop"];
  }
  const controller = new AbortController();
  const removeSignals = onShutdownSignal((sig) => {
    if (controller.signal.aborted) process.exit(130);
    console.error(`\n${sig}: finishing in-flight pages (again to quit at once)`);
    controller.abort();
  });
  try {
    const registry = await loadRegistry(config, overrides, modules);
    const result = await runStandalone({ config, registry, modules, signal: controller.signal, progress: true });
    console.error(summaryText(result.stats, result.output));
    for (const line of result.stats.droppedLinksLines()) console.error(line);
    const dead = Object.entries(result.deadLetters).filter(([, n]) => n > 0);
    if (dead.length > 0) console.error(`dead letters: ${dead.map(([t, n]) => `${t} ${n}`).join(", ")}; all of them in ${result.deadLetterFile}`);
    if (result.interrupted) console.error("interrupted: requests still queued in memory were not crawled");
    return 0;
  } finally {
    removeSignals();
    await shop?.close();
  }
}
