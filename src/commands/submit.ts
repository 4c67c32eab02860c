import { parseArgs } from "node:util";
import { isPriority, type JsonValue, parserTaskModel, type Priority, taskModel } from "../model/index.ts";
import { openQueue } from "../queue/open-queue.ts";
import { runSummaryText } from "../engine/progress.ts";
import { isFinished, RedisQueue, type RunBook, type RunCounts } from "../queue/redis/index.ts";
import { onShutdownSignal } from "../runtime/index.ts";
import { loadConfigFrom, loadRegistry, UsageError } from "./common.ts";

export const usage = `usage: submit <module>... [--config PATH] [--account A] [--platform P]
              [--priority high|normal|low] [--param KEY=VALUE]... [--wait [--fail-on-dead-letters]]

Puts a task for the modules on the queue (Redis, or JetStream with [channel_config.nats]);
running workers pick it up. Prints the run id.

  --account A, --platform P   the task's account and platform (mocra's TaskModel fields)
  --priority P                high, normal (default) or low
  --param KEY=VALUE           a parameter for the modules' start() (ctx.metadata.params);
                              with parameters the task travels as a ParserTask (mocra's
                              task-with-metadata), without as a plain TaskModel
  --wait                      follow the run until it is finished (nothing of it queued, in
                              flight or delayed on any worker), then print its summary (the
                              figures of every worker) and exit 0; Ctrl-C stops following
                              (the run goes on) and exits 130
  --fail-on-dead-letters      with --wait: exit 1 if the run ended with dead letters
  -h, --help                  this help`;

const POLL_MS = 500;

export async function submitCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: "string" },
      account: { type: "string", default: "" },
      platform: { type: "string", default: "" },
      priority: { type: "string", default: "normal" },
      param: { type: "string", multiple: true },
      wait: { type: "boolean" },
      "fail-on-dead-letters": { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(usage);
    return 0;
  }
  if (positionals.length === 0) throw new UsageError("name at least one module");
  if (!isPriority(values.priority)) throw new UsageError(`--priority must be high, normal or low, got ${JSON.stringify(values.priority)}`);
  const priority: Priority = values.priority;
  const params: Record<string, JsonValue> = {};
  for (const p of values.param ?? []) {
    const eq = p.indexOf("=");
    if (eq <= 0) throw new UsageError(`--param takes KEY=VALUE, got ${JSON.stringify(p)}`);
    params[p.slice(0, eq)] = p.slice(eq + 1);
  }
  const config = await loadConfigFrom(values.config);
  const registry = await loadRegistry(config, {}, positionals);
  for (const m of positionals) registry.get(m); // a typo fails here, not in a worker

  const task = taskModel({ account: values.account, platform: values.platform, module: positionals, priority });
  if (values["fail-on-dead-letters"] && !values.wait) throw new UsageError("--fail-on-dead-letters goes with --wait");
  const queue = await openQueue(config);
  // a run's counts are kept by the Redis queue's own steps; JetStream has none to follow
  const runs = queue instanceof RedisQueue ? queue.runs() : undefined;
  if (values.wait && !runs) {
    await queue.close();
    throw new UsageError("--wait follows a run's counts, which only the Redis queue keeps; with [channel_config.nats], watch `status`");
  }
  try {
    await runs?.record(task.runId, positionals);
    if (Object.keys(params).length > 0) {
      await queue.publish("parser_task", [{ message: parserTaskModel({ accountTask: task, metadata: { params } }) }]);
    } else {
      await queue.publish("task", [{ message: task }]);
    }
    console.log(task.runId);
    console.error(`submitted ${positionals.join(", ")} (run ${task.runId}, priority ${priority}) to ${config.name}`);
    if (!values.wait || !runs) return 0;
    const run = await followRun(runs, task.runId, config.crawler.progressIntervalSecs * 1000);
    if (run === undefined) {
      console.error(`stopped following run ${task.runId}; it goes on (see: status)`);
      return 130;
    }
    for (const line of runSummaryText(run, `stored by the workers ([output] sink = "${config.output.sink}")`).split("\n")) console.error(line);
    if (run.dead > 0 && values["fail-on-dead-letters"]) {
      console.error(`run ${task.runId} ended with ${run.dead} dead letters (--fail-on-dead-letters)`);
      return 1;
    }
    return 0;
  } finally {
    await queue.close();
  }
}

/**
 * Polls the run's counts until it is finished (its last message settled on some worker);
 * a progress line every `everyMs`. Resolves undefined on SIGINT/SIGTERM.
 */
async function followRun(runs: RunBook, runId: string, everyMs: number): Promise<RunCounts | undefined> {
  let stop = false;
  let wake: () => void = () => {};
  const remove = onShutdownSignal(() => {
    stop = true;
    wake();
  });
  try {
    let lastLine = Date.now();
    for (;;) {
      const run = await runs.read(runId);
      if (run && isFinished(run)) return run;
      if (stop) return undefined;
      if (Date.now() - lastLine >= everyMs) {
        lastLine = Date.now();
        console.error(run ? `run ${runId}: ${run.pages} pages, ${run.items} items, ${run.dead} dead letters, ${Math.max(0, run.open)} messages open` : `run ${runId}: not known to Redis (expired?)`);
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, POLL_MS);
        wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      if (stop) return undefined;
    }
  } finally {
    remove();
  }
}
