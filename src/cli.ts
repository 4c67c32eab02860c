// mocra-ts command line: `tsx src/cli.ts <command> [options]` (or `deno task <command>`).
import { ConfigError } from "./config/index.ts";
import { FileWriteFault, StateError } from "./state/errors.ts";
import { UsageError } from "./commands/common.ts";
import { followParent, NO_SUPERVISOR, supervise, SUPERVISED_BY } from "./commands/supervise.ts";
import { ModuleError } from "./modules/registry.ts";
import { args, exit, preferSteadyMemory } from "./runtime/index.ts";
import { ServiceError } from "./runtime/service-error.ts";

type Command = (argv: string[]) => Promise<number>;

/**
 * A command whose module is imported when it runs: each command loads only what it needs, so
 * run-standalone does not load the Redis client, the PostgreSQL driver or the API server.
 */
function lazy<M>(load: () => Promise<M>, pick: (m: M) => Command): Command {
  return async (argv) => pick(await load())(argv);
}

/** Commands run under the supervisor (src/commands/supervise.ts) unless --no-supervisor. */
const SUPERVISED = new Set(["run-standalone", "start-worker"]);

const commands: Record<string, { run: Command; summary: string }> = {
  "run-standalone": { run: lazy(() => import("./commands/run-standalone.ts"), (m) => m.runStandaloneCommand), summary: "crawl in this process until drained (frontier kept on disk; --resume)" },
  "start-worker": { run: lazy(() => import("./commands/start-worker.ts"), (m) => m.startWorkerCommand), summary: "work on the crawl in Redis until SIGINT/SIGTERM" },
  submit: { run: lazy(() => import("./commands/submit.ts"), (m) => m.submitCommand), summary: "put a task for modules into Redis" },
  status: { run: lazy(() => import("./commands/status.ts"), (m) => m.statusCommand), summary: "queues, pending work, dead letters and live workers in Redis" },
  dlq: { run: lazy(() => import("./commands/dlq.ts"), (m) => m.dlqCommand), summary: "list, replay or purge dead letters in Redis" },
  export: { run: lazy(() => import("./commands/export.ts"), (m) => m.exportCommand), summary: "write the stored items (Redis or PostgreSQL) as JSONL, JSON or CSV files" },
  config: { run: lazy(() => import("./commands/config.ts"), (m) => m.configCommand), summary: "check a config file: errors, warnings, effective settings" },
  parse: { run: lazy(() => import("./commands/parse.ts"), (m) => m.parseCommand), summary: "run a module's parse on one page (URL or saved file) and print items and links" },
  init: { run: lazy(() => import("./commands/init.ts"), (m) => m.initCommand), summary: "write a crawler project of your own to DIR (package.json, config, a module and its test)" },
  new: { run: lazy(() => import("./commands/new-module.ts"), (m) => m.newModuleCommand), summary: "write a module skeleton to modules/<name>.ts" },
  pause: { run: lazy(() => import("./commands/control.ts"), (m) => m.controlCommand("pause")), summary: "stop every worker of the crawl taking new work (or one module's)" },
  resume: { run: lazy(() => import("./commands/control.ts"), (m) => m.controlCommand("resume")), summary: "let the paused crawl (or module) go on" },
  dashboard: { run: lazy(() => import("./commands/dashboard.ts"), (m) => m.dashboardCommand), summary: "serve the API and dashboard for the crawl in Redis, without crawling" },
};

const usage = `usage: mocra-ts <command> [options]

commands:
${Object.entries(commands)
  .map(([name, c]) => `  ${name.padEnd(16)}${c.summary}`)
  .join("\n")}

Run \`<command> --help\` for a command's options. --debug (any command): print stack traces of failures.`;

async function main(all: string[]): Promise<number> {
  const debug = all.includes("--debug");
  let [name, ...rest] = all.filter((a) => a !== "--debug");
  if (!name || name === "--help" || name === "-h" || name === "help") {
    console.log(usage);
    return name ? 0 : 2;
  }
  const command = commands[name];
  const supervisedBy = rest.find((a) => a.startsWith(SUPERVISED_BY));
  if (supervisedBy) followParent(Number(supervisedBy.slice(SUPERVISED_BY.length)));
  else if (SUPERVISED.has(name) && !rest.some((a) => a === NO_SUPERVISOR || a === "--help" || a === "-h" || a === "--demo")) {
    // module code that blocks the process is ended by the watchdog; the parent starts it again
    return await supervise(all, (argv) => (name === "run-standalone" && !argv.includes("--resume") ? [...argv, "--resume"] : [...argv]));
  }
  rest = rest.filter((a) => !a.startsWith(SUPERVISED_BY) && a !== NO_SUPERVISOR);
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
    if (err instanceof FileWriteFault) {
      console.error(`${name}: ${err.message}`);
      return 1;
    }
    // one line; the stack only when asked for
    const text = err instanceof Error ? (debug ? (err.stack ?? err.message) : err.message.split("\n")[0]) : String(err);
    console.error(`${name} failed: ${text}${debug ? "" : " (--debug for the stack trace)"}`);
    return 1;
  }
}

preferSteadyMemory();
exit(await main(args()));
