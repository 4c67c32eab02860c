import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { openConnection } from "../queue/redis/connection.ts";
import { exportItems, listItemModules } from "../storage/redis-sink.ts";
import { loadConfigFrom } from "./common.ts";

export const usage = `usage: export [--config PATH] [--module NAME]... [--out DIR]

Writes the items the Redis sink (output.sink = "redis") holds to <DIR>/<module>.jsonl, one JSON
object per line, in the order they were stored. Default: every module, DIR = output.path.`;

export async function exportCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      config: { type: "string" },
      module: { type: "string", multiple: true },
      out: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(usage);
    return 0;
  }
  const config = await loadConfigFrom(values.config);
  const r = config.channelConfig.redis;
  const redis = await openConnection(r, "command", r.connectTimeoutMs, `${config.name}:export`);
  try {
    const modules = values.module ?? (await listItemModules(redis, config.name));
    if (modules.length === 0) console.error(`no items stored in Redis for ${config.name}`);
    const dir = values.out ?? config.output.path;
    await mkdir(dir, { recursive: true });
    for (const m of modules) {
      const file = join(dir, `${m}.jsonl`);
      const n = await exportItems(redis, config.name, m, file);
      console.log(`${m}: ${n} items → ${file}`);
    }
  } finally {
    redis.disconnect();
  }
  return 0;
}
