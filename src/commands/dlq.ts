import { parseArgs } from "node:util";
import { TOPICS, type Topic, URL_HEADER } from "../model/index.ts";
import { RedisQueue } from "../queue/redis/index.ts";
import { loadConfigFrom, UsageError } from "./common.ts";
import { printable } from "../text/printable.ts";

export const usage = `usage: dlq list|replay|purge [--topic T] [--count N] [--config PATH]

The dead letters of a topic (default: request) in Redis.

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
  const queue = await RedisQueue.connect(config);
  try {
    if (action === "list") {
      const letters = await queue.listDeadLetters(topic, count ?? 20);
      if (letters.length === 0) console.log(`no dead letters in ${topic}`);
      for (const d of letters) {
        // reasons and URLs come from the network: no raw control characters on the terminal
        console.log(`${d.id}  ${d.priority}  ${printable(d.reason)}  [was ${d.originalId}]  ${printable(whatOf(d.message))}`);
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

/**
 * What a dead letter of any topic was about: its module(s) and URL where it has them (a task's
 * `module` is a list, or null for every module; a response carries its URL), else its run.
 */
export function whatOf(message: unknown): string {
  if (message === undefined || message === null || typeof message !== "object") return "(undecodable payload)";
  const m = message as { url?: unknown; module?: unknown; runId?: unknown; headers?: unknown };
  const parts: string[] = [];
  if (Array.isArray(m.module)) parts.push(`module ${m.module.map(String).join(",")}`);
  else if (m.module === null) parts.push("every module");
  else if (typeof m.module === "string") parts.push(m.module);
  let url = typeof m.url === "string" ? m.url : undefined;
  if (url === undefined && Array.isArray(m.headers)) {
    const header = (m.headers as unknown[]).find((h): h is [string, string] => Array.isArray(h) && h[0] === URL_HEADER && typeof h[1] === "string");
    url = header?.[1];
  }
  if (url !== undefined) parts.push(url);
  if (parts.length === 0 && typeof m.runId === "string") parts.push(`run ${m.runId}`);
  return parts.join(" ");
}
