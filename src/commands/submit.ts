import { parseArgs } from "node:util";
import { isPriority, type JsonValue, parserTaskModel, type Priority, taskModel } from "../model/index.ts";
import { openQueue } from "../queue/open-queue.ts";
import { loadConfigFrom, loadRegistry, UsageError } from "./common.ts";

export const usage = `usage: submit <module>... [--config PATH] [--account A] [--platform P]
              [--priority high|normal|low] [--param KEY=VALUE]...

Puts a task for the modules on the queue (Redis, or JetStream with [channel_config.nats]);
running workers pick it up. Prints the run id.

  --account A, --platform P   the task's account and platform (mocra's TaskModel fields)
  --priority P                high, normal (default) or low
  --param KEY=VALUE           a parameter for the modules' start() (ctx.metadata.params);
                              with parameters the task travels as a ParserTask (mocra's
                              task-with-metadata), without as a plain TaskModel
  -h, --help                  this help`;

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
  const queue = await openQueue(config);
  try {
    if (Object.keys(params).length > 0) {
      await queue.publish("parser_task", [{ message: parserTaskModel({ accountTask: task, metadata: { params } }) }]);
    } else {
      await queue.publish("task", [{ message: task }]);
    }
  } finally {
    await queue.close();
  }
  console.log(task.runId);
  console.error(`submitted ${positionals.join(", ")} (run ${task.runId}, priority ${priority}) to ${config.name}`);
  return 0;
}
