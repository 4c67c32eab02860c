import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { parseArgs } from "node:util";
import type { Config } from "../config/index.ts";
import { openConnection } from "../redis/connection.ts";
import { EXPORT_FORMATS, type ExportFormat } from "../storage/export.ts";
import { exportPostgresItems, listPostgresModules } from "../storage/export-postgres.ts";
import { exportItems, listItemModules } from "../storage/export-redis.ts";
import { connectPostgres } from "../storage/postgres-sink.ts";
import { loadConfigFrom, UsageError } from "./common.ts";

export const usage = `usage: export [--config PATH] [--module NAME]... [--out DIR] [--format jsonl|json|csv] [--delete] [--from redis|postgres]

Writes the stored items of each module to <DIR>/<module>.<format>, in the order they were
stored: from the Redis sink (output.sink = "redis") or the PostgreSQL tables (output.sink =
"postgres"; <db.database_schema>.items_<module>). Default: every module, DIR = output.path,
format jsonl, source = output.sink if it is "postgres", else redis.

  --format F     jsonl (one JSON object per line), json (one array) or csv (header = the
                 union of the items' keys; nested values as JSON)
  --delete       after a module's file is written, remove what was exported (items stored
                 meanwhile stay). Redis keeps the seen-set, so a redelivered page still adds
                 nothing; PostgreSQL rows go with their unique keys, so delete once the crawl is over.
  --from S       redis or postgres`;

interface Exporter {
  modules(): Promise<string[]>;
  run(module: string, file: string, format: ExportFormat, remove: boolean): Promise<number>;
  where: string;
  close(): Promise<void>;
}

async function redisExporter(config: Config): Promise<Exporter> {
  const r = config.channelConfig.redis;
  const redis = await openConnection(r, "command", r.connectTimeoutMs, `${config.name}:export`);
  return {
    where: `Redis for ${config.name}`,
    modules: () => listItemModules(redis, config.name),
    run: (module, file, format, remove) => exportItems(redis, config.name, module, file, { format, removeExported: remove }),
    close: async () => redis.disconnect(),
  };
}

async function postgresExporter(config: Config): Promise<Exporter> {
  if (config.db.url === "") throw new UsageError('--from postgres needs [db] url = "postgres://..." in the config');
  const sql = await connectPostgres(config);
  const schema = config.db.databaseSchema;
  return {
    where: `PostgreSQL schema ${schema}`,
    modules: () => listPostgresModules(sql, schema),
    run: (module, file, format, remove) => exportPostgresItems(sql, schema, module, file, { format, removeExported: remove }),
    close: () => sql.end({ timeout: 5 }),
  };
}

export async function exportCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      config: { type: "string" },
      module: { type: "string", multiple: true },
      out: { type: "string" },
      format: { type: "string" },
      delete: { type: "boolean" },
      from: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(usage);
    return 0;
  }
  const format = (values.format ?? "jsonl") as ExportFormat;
  if (!EXPORT_FORMATS.includes(format)) throw new UsageError(`unknown --format ${JSON.stringify(values.format)}: formats are ${EXPORT_FORMATS.join(", ")}`);
  const config = await loadConfigFrom(values.config);
  const from = values.from ?? (config.output.sink === "postgres" ? "postgres" : "redis");
  if (from !== "redis" && from !== "postgres") throw new UsageError(`unknown --from ${JSON.stringify(from)}: sources are redis, postgres`);
  const exporter = from === "postgres" ? await postgresExporter(config) : await redisExporter(config);
  try {
    const modules = values.module ?? (await exporter.modules());
    if (modules.length === 0) console.error(`no items stored in ${exporter.where}`);
    const dir = values.out ?? config.output.path;
    await mkdir(dir, { recursive: true });
    for (const m of modules) {
      const file = join(dir, `${m}.${format}`);
      const n = await exporter.run(m, file, format, values.delete === true);
      console.log(`${m}: ${n} items → ${file}${values.delete === true ? " (removed from the store)" : ""}`);
    }
  } finally {
    await exporter.close();
  }
  return 0;
}
