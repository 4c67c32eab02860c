import { parseArgs } from "node:util";
import { printable } from "../text/printable.ts";
import { parseSource } from "../modules/parse-tester.ts";
import { loadConfigFrom, loadRegistry, UsageError } from "./common.ts";

export const usage = `usage: parse --module NAME [--step STEP] [--url URL] [--config PATH] [--json] URL|FILE

Runs one module's parse (or one step of it) on a page, without a crawl, and prints the items it
emits and the requests it would follow. A URL is downloaded once (no robots.txt, no retries);
anything else is read as a saved file.

  --module NAME  the module (required)
  --step STEP    the step to run (multi-step modules; default: the first)
  --url URL      the page's URL for a file, so relative links resolve (default http://localhost/<file>)
  --config PATH  config file ([modules.<name>] settings apply)
  --json         print {items, requests, tasks, dropped} as JSON`;

export async function parseCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      module: { type: "string" },
      step: { type: "string" },
      url: { type: "string" },
      config: { type: "string" },
      json: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(usage);
    return 0;
  }
  if (!values.module) throw new UsageError("--module NAME is required");
  if (positionals.length !== 1) throw new UsageError(`give one URL or FILE, got ${positionals.length}`);
  const config = await loadConfigFrom(values.config);
  const registry = await loadRegistry(config, {}, [values.module]);
  const module = registry.get(values.module);
  if (values.step !== undefined && !module.stepNames.includes(values.step)) {
    throw new UsageError(`module ${module.name} has no step ${JSON.stringify(values.step)} (steps: ${module.stepNames.join(", ")})`);
  }
  const out = await parseSource(module, positionals[0], {
    step: values.step,
    url: values.url,
    settings: registry.settings(module.name),
    userAgent: config.crawler.userAgent,
    timeoutSecs: config.downloadConfig.timeout,
  });
  if (values.json) {
    console.log(JSON.stringify(out, null, 2));
    return 0;
  }
  const lines = [`items (${out.items.length}):`, ...out.items.map((i) => `  ${printable(JSON.stringify(i))}`)];
  lines.push(`follow-ups (${out.requests.length}):`, ...out.requests.map((r) => `  ${r.method} ${printable(r.url)}  [step ${printable(r.step)}]`));
  if (out.tasks.length > 0) lines.push(`tasks for other modules (${out.tasks.length}):`, ...out.tasks.map((t) => `  ${printable((t.accountTask.module ?? []).join(","))} ${printable(JSON.stringify(t.metadata))}`));
  if (out.dropped.length > 0) lines.push(`not followed (${out.dropped.length}):`, ...out.dropped.map((s) => `  ${printable(s)}`));
  console.log(lines.join("\n"));
  return 0;
}
