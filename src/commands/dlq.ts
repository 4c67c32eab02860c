import { parseArgs } from "node:util";
import { TOPICS, type Topic } from "../model/index.ts";
import { openQueue } from "../queue/open-queue.ts";
import { loadConfigFrom, UsageError } from "./common.ts";
import { printable } from "../text/printable.ts";

export const usage = `usage: dlq list|replay|purge [--topic T] [--count N] [--config PATH]

The dead letters of a topic (default: request) in Redis, or on JetStream ({ns}._dlq.{topic}-{priority})
with [channel_config.nats].

  list     show up to --count dead letters (default 20): id, reason, original entry, message
  replay   move up to --count dead letters back to their queue (default: all)
  purge    delete every dead letter of the topic
  --topic  task, request, response, parser_task or error_task`;

export async function dlqCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: "string" },
      topic: { type: "string", default: "request" },
      count: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(usage);
    return 0;
  }
  const [action] = positionals;
  if (action !== "list" && action !== "replay" && action !== "purge") throw new UsageError("say list, replay or purge");
  if (!TOPICS.includes(values.topic as Topic)) throw new UsageError(`--topic must be one of ${TOPICS.join(", ")}`);
  const topic = values.topic as Topic;
  const count = values.count === undefined ? undefined : Number(values.count);
  if (count !== undefined && !(Number.isInteger(count) && count > 0)) throw new UsageError("--count must be a whole number > 0");
  const config = await loadConfigFrom(values.config);
  const queue = await openQueue(config);
  try {
    if (action === "list") {
      const letters = await queue.listDeadLetters(topic, count ?? 20);
      if (letters.length === 0) console.log(`no dead letters in ${topic}`);
      for (const d of letters) {
        const m = d.message as { url?: string; module?: string } | undefined;
        const what = m === undefined ? "(undecodable payload)" : (m.url ?? m.module ?? "");
        // reasons and URLs come from the network: no raw control characters on the terminal
        console.log(`${d.id}  ${d.priority}  ${printable(d.reason)}  [was ${d.originalId}]  ${printable(what)}`);
      }
    } else if (action === "replay") {
      console.log(`replayed ${await queue.replayDeadLetters(topic, count ?? Number.MAX_SAFE_INTEGER)} dead letters of ${topic}`);
    } else {
      console.log(`purged ${await queue.purgeDeadLetters(topic)} dead letters of ${topic}`);
    }
  } finally {
    await queue.close();
  }
  return 0;
}
