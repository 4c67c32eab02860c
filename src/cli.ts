// mocra-ts command line: `tsx src/cli.ts <command> [options]` (or `deno task <command>`).
import { ConfigError } from "./config/index.ts";
import { StateError } from "./state/errors.ts";
import { UsageError } from "./commands/common.ts";
import { controlCommand } from "./commands/control.ts";
import { dashboardCommand } from "./commands/dashboard.ts";
import { configCommand } from "./commands/config.ts";
import { dlqCommand } from "./commands/dlq.ts";
import { exportCommand } from "./commands/export.ts";
import { initCommand } from "./commands/init.ts";
import { newModuleCommand } from "./commands/new-module.ts";
import { parseCommand } from "./commands/parse.ts";
import { runStandaloneCommand } from "./commands/run-standalone.ts";
import { startWorkerCommand } from "./commands/start-worker.ts";
import { statusCommand } from "./commands/status.ts";
import { submitCommand } from "./commands/submit.ts";
import { ModuleError } from "./modules/registry.ts";
import { args, exit, preferSteadyMemory } from "./runtime/index.ts";
import { ServiceError } from "./runtime/service-error.ts";

type Command = (argv: string[]) => Promise<number>;

const commands: Record<string, { run: Command; summary: string }> = {
  "run-standalone": { run: runStandaloneCommand, summary: "crawl in this process until drained (frontier kept on disk; --resume)" },
  "start-worker": { run: startWorkerCommand, summary: "work on the crawl in Redis until SIGINT/SIGTERM" },
  submit: { run: submitCommand, summary: "put a task for modules into Redis" },
  status: { run: statusCommand, summary: "queues, pending work, dead letters and live workers in Redis" },
  dlq: { run: dlqCommand, summary: "list, replay or purge dead letters in Redis" },
  export: { run: exportCommand, summary: "write the stored items (Redis or PostgreSQL) as JSONL, JSON or CSV files" },
  config: { run: configCommand, summary: "check a config file: errors, warnings, effective settings" },
  parse: { run: parseCommand, summary: "run a module's parse on one page (URL or saved file) and print items and links" },
  init: { run: initCommand, summary: "write a crawler project of your own to DIR (package.json, config, a module and its test)" },
  new: { run: newModuleCommand, summary: "write a module skeleton to modules/<name>.ts" },
  pause: { run: controlCommand("pause"), summary: "stop every worker of the crawl taking new work (or one module's)" },
  resume: { run: controlCommand("resume"), summary: "let the paused crawl (or module) go on" },
  dashboard: { run: dashboardCommand, summary: "serve the API and dashboard for the crawl in Redis, without crawling" },
};

const usage = `usage: mocra-ts <command> [options]

commands:
${Object.entries(commands)
  .map(([name, c]) => `  ${name.padEnd(16)}${c.summary}`)
  .join("\n")}

Run \`<command> --help\` for a command's options. --debug (any command): print stack traces of failures.`;

async function main(all: string[]): Promise<number> {
  const debug = all.includes("--debug");
  const [name, ...rest] = all.filter((a) => a !== "--debug");
  if (!name || name === "--help" || name === "-h" || name === "help") {
    console.log(usage);
    return name ? 0 : 2;
  }
  const command = commands[name];
  if (!command) {
    console.error(`unknown command ${JSON.stringify(name)}\n\n${usage}`);
    return 2;
  }
  try {
    return await command.run(rest);
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`configuration error:\n${err.message}`);
      return 2;
    }
    if (err instanceof ServiceError || err instanceof ModuleError) {
      console.error(`${name}: ${err.message}`);
      return 1;
    }
    if (err instanceof UsageError || (err as { code?: string }).code?.startsWith("ERR_PARSE_ARGS")) {
      console.error(`${name}: ${(err as Error).message}\nRun \`${name} --help\` for usage.`);
      return 2;
    }
    if (err instanceof StateError) {
      console.error(err.message);
      return 2;
    }
    // one line; the stack only when asked for
    const text = err instanceof Error ? (debug ? (err.stack ?? err.message) : err.message.split("\n")[0]) : String(err);
    console.error(`${name} failed: ${text}${debug ? "" : " (--debug for the stack trace)"}`);
    return 1;
  }
}

preferSteadyMemory();
exit(await main(args()));
