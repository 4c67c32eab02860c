// src/storage/export-postgres.ts: exporting the PostgreSQL sink's items tables (see
// postgres-sink.ts for their layout) as JSON lines, one JSON array or CSV, and listing them.
import type postgres from "postgres";
import { type ExportFormat, type ExportTarget, type ItemSource, writeExport } from "./export.ts";
import { checkModule, itemsTable, MODULE_PATTERN } from "./postgres-sink.ts";

type Sql = postgres.Sql<Record<string, never>>;

/** The modules that have an items table in `schema`, sorted. */
export async function listPostgresModules(sql: Sql, schema: string): Promise<string[]> {
  const rows = await sql`SELECT table_name FROM information_schema.tables WHERE table_schema = ${schema} AND table_name LIKE 'items\\_%' ORDER BY table_name`;
  return rows.map((r) => String(r.table_name).slice("items_".length)).filter((m) => MODULE_PATTERN.test(m));
}

export interface PostgresExportOptions {
  /** jsonl (default), json (one array) or csv (header = union of the item keys) */
  format?: ExportFormat;
  /** rows per SELECT (default 1000) */
  pageSize?: number;
  /**
   * After everything is written, delete the exported rows (rows stored meanwhile stay). Their
   * unique keys go with them: a page redelivered after that is stored again.
   */
  removeExported?: boolean;
}

/**
 * Writes the items of `module`'s table (stored order, up to the last row there when the export
 * starts) to `out`; returns the item count. A module without a table exports nothing.
 */
export async function exportPostgresItems(sql: Sql, schema: string, module: string, out: ExportTarget, opts: PostgresExportOptions = {}): Promise<number> {
  checkModule(module);
  const table = itemsTable(schema, module);
  const pageSize = opts.pageSize ?? 1000;
  const [{ exists }] = await sql`SELECT to_regclass(${table}) IS NOT NULL AS exists`;
  const maxId = exists === true ? Number((await sql.unsafe(`SELECT coalesce(max(id), 0) AS max FROM ${table}`))[0].max) : 0;
  const source: ItemSource = {
    async *pages() {
      let after = 0;
      while (after < maxId) {
        const rows = await sql.unsafe(`SELECT id, item::text AS item FROM ${table} WHERE id > $1 AND id <= $2 ORDER BY id LIMIT $3`, [after, maxId, pageSize]);
        if (rows.length === 0) return;
        after = Number(rows[rows.length - 1].id);
        yield rows.map((r) => String(r.item));
      }
    },
  };
  const count = await writeExport(source, opts.format ?? "jsonl", out);
  if (opts.removeExported && maxId > 0) await sql.unsafe(`DELETE FROM ${table} WHERE id <= $1`, [maxId]);
  return count;
}
