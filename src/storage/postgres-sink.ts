// src/storage/postgres-sink.ts: the PostgreSQL items store (`[output] sink = "postgres"`,
// connection from mocra's `[db]`). Items of module M go to `<database_schema>.items_<M>`:
//
//   id bigserial primary key      stored order (export reads by it)
//   fingerprint text              the request fingerprint of the page
//   item_index integer            the item's index on that page; UNIQUE (fingerprint, item_index)
//   module text, run_id text, url text, item jsonb, stored_at timestamptz default now()
//
// Writes that arrive while an INSERT is in flight go together in the next one: one multi-row
// INSERT ... SELECT FROM unnest(<six arrays>) per module and chunk, ON CONFLICT DO NOTHING, so a
// redelivered page adds no row whichever worker stores it (the same exactly-once contract as the
// Redis sink). A write resolves only once its rows are committed, so its message is acked only
// then. A database that goes away pauses writes (and so acks): they are retried with capped
// backoff for `output.postgres_outage_secs`, then fail (and the message is retried later).

import postgres from "postgres";
import type { Config } from "../config/schema.ts";
import { ServiceError } from "../runtime/service-error.ts";
import { type ExportFormat, type ExportTarget, type ItemSource, writeExport } from "./export.ts";
import type { ItemBatch, ItemSink } from "./sink.ts";

const MODULE_PATTERN = /^[A-Za-z0-9_.-]+$/;
/** PostgreSQL truncates identifiers beyond 63 bytes; "items_" takes 6. */
const MAX_MODULE_LENGTH = 57;

type Sql = postgres.Sql<Record<string, never>>;

export interface PostgresItemSinkOptions {
  /** most rows per INSERT (default 500) */
  batchRows?: number;
  /** seconds writes wait for a database that went away before failing (default 600) */
  outageSecs?: number;
  /** where "database unavailable / back" lines go (default: stderr) */
  onStatus?: (line: string) => void;
}

/** The parts of a postgres:// URL that messages may show (never the password). */
export interface PostgresEndpoint {
  host: string;
  port: number;
  database: string;
}

export function postgresEndpoint(url: string): PostgresEndpoint {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new Error(`db.url is not a valid URL`);
  }
  return { host: u.hostname || "localhost", port: Number(u.port || 5432), database: decodeURIComponent(u.pathname.slice(1)) || "postgres" };
}

/** A quoted SQL identifier. */
function ident(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** The quoted `<schema>.items_<module>` of a module. */
export function itemsTable(schema: string, module: string): string {
  return `${ident(schema)}.${ident(`items_${module}`)}`;
}

function checkModule(module: string): void {
  if (!MODULE_PATTERN.test(module) || module.length > MAX_MODULE_LENGTH) {
    throw new Error(`invalid module name for a PostgreSQL table: ${JSON.stringify(module)} ([A-Za-z0-9_.-], at most ${MAX_MODULE_LENGTH} characters)`);
  }
}

/** Opens a pool for `[db]` (lazy: nothing connects until the first query). */
export function openPostgres(config: Config): Sql {
  const db = config.db;
  return postgres(db.url, {
    max: db.poolSize,
    ssl: db.tls ? "require" : false,
    connect_timeout: 10,
    idle_timeout: 60,
    onnotice: () => {}, // "relation already exists, skipping" and the like
    connection: { application_name: `mocra-ts:${config.name}` },
  });
}

/** openPostgres, then one query: fails with "cannot connect to PostgreSQL at host:port (database d): <reason>". */
export async function connectPostgres(config: Config): Promise<Sql> {
  const endpoint = postgresEndpoint(config.db.url);
  const sql = openPostgres(config);
  try {
    await sql`SELECT 1`;
  } catch (err) {
    await sql.end({ timeout: 1 }).catch(() => {});
    throw new ServiceError(`cannot connect to PostgreSQL at ${endpoint.host}:${endpoint.port} (database ${JSON.stringify(endpoint.database)}): ${reason(err)}`);
  }
  return sql;
}

/** SQLSTATE classes and socket errors that mean "the database is not there right now". */
export function isConnectionError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== "string") return false;
  if (code.startsWith("08") || code === "57P01" || code === "57P02" || code === "57P03") return true;
  return /^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|EHOSTUNREACH|ENETUNREACH|EAI_AGAIN|CONNECT_TIMEOUT|CONNECTION_CLOSED|CONNECTION_ENDED|CONNECTION_DESTROYED)$/.test(code);
}

function reason(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown } | null;
  const msg = typeof e?.message === "string" && e.message !== "" ? e.message : String(err);
  return typeof e?.code === "string" && !msg.includes(e.code) ? `${e.code}: ${msg}` : msg;
}

interface PendingWrite {
  batch: ItemBatch;
  items: string[];
  resolve: (stored: boolean) => void;
  reject: (err: unknown) => void;
}

export class PostgresItemSink implements ItemSink {
  private pending: PendingWrite[] = [];
  private flushing: Promise<void> | undefined;
  private closed = false;
  private readonly tables = new Map<string, Promise<void>>();
  private readonly batchRows: number;
  private readonly outageMs: number;
  private readonly onStatus: (line: string) => void;
  private readonly where: string;

  constructor(
    private readonly sql: Sql,
    readonly schema: string,
    endpoint: PostgresEndpoint,
    options: PostgresItemSinkOptions = {},
    private readonly ownsPool = false,
  ) {
    this.batchRows = Math.max(1, options.batchRows ?? 500);
    this.outageMs = (options.outageSecs ?? 600) * 1000;
    this.onStatus = options.onStatus ?? ((line) => console.error(line));
    this.where = `PostgreSQL at ${endpoint.host}:${endpoint.port}`;
  }

  /** A sink on its own pool for `[db]`; checks the connection first (an error names host:port and the reason). */
  static async connect(config: Config, options: PostgresItemSinkOptions = {}): Promise<PostgresItemSink> {
    const sql = await connectPostgres(config);
    return new PostgresItemSink(sql, config.db.databaseSchema, postgresEndpoint(config.db.url), {
      batchRows: config.output.postgresBatchRows,
      outageSecs: config.output.postgresOutageSecs,
      ...options,
    }, true);
  }

  describe(): string {
    return `${this.where} table ${this.schema}.items_<module>`;
  }

  write(batch: ItemBatch): Promise<boolean> {
    if (this.closed) return Promise.reject(new Error("PostgresItemSink: write after close"));
    try {
      checkModule(batch.module);
    } catch (err) {
      return Promise.reject(err);
    }
    if (batch.items.length === 0) return Promise.resolve(true);
    const items: string[] = [];
    try {
      for (const item of batch.items) items.push(JSON.stringify(item) ?? "null");
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise((resolve, reject) => {
      this.pending.push({ batch, items, resolve, reject });
      this.flushing ??= this.flushLoop();
    });
  }

  private async flushLoop(): Promise<void> {
    try {
      while (this.pending.length > 0) {
        const writes = this.pending;
        this.pending = [];
        const byModule = new Map<string, PendingWrite[]>();
        for (const w of writes) {
          const list = byModule.get(w.batch.module);
          if (list) list.push(w);
          else byModule.set(w.batch.module, [w]);
        }
        await Promise.all([...byModule].map(([module, list]) => this.storeModule(module, list)));
      }
    } finally {
      this.flushing = undefined;
    }
  }

  private async storeModule(module: string, writes: PendingWrite[]): Promise<void> {
    try {
      await this.whileAvailable(() => this.ensureTable(module));
    } catch (err) {
      for (const w of writes) w.reject(err);
      return;
    }
    // the same page twice in one flush (a redelivery): stored once, the copy answers "stored before"
    const firsts = new Map<string, PendingWrite>();
    for (const w of writes) {
      const first = firsts.get(w.batch.fingerprint);
      if (first === undefined) {
        firsts.set(w.batch.fingerprint, w);
        continue;
      }
      const [resolve, reject] = [first.resolve, first.reject];
      first.resolve = (stored) => {
        resolve(stored);
        w.resolve(false);
      };
      first.reject = (err) => {
        reject(err);
        w.reject(err);
      };
    }
    // chunks of whole pages, each at most batchRows rows (a page with more rows is one chunk)
    let chunk: PendingWrite[] = [];
    let rows = 0;
    for (const w of firsts.values()) {
      if (rows > 0 && rows + w.items.length > this.batchRows) {
        await this.storeChunk(module, chunk);
        chunk = [];
        rows = 0;
      }
      chunk.push(w);
      rows += w.items.length;
    }
    await this.storeChunk(module, chunk);
  }

  /**
   * Settles every write of a chunk. If the chunk's INSERT fails for a reason other than the
   * database being away (a value PostgreSQL refuses, such as a \u0000 in jsonb), each page is
   * tried alone, so only the bad page fails.
   */
  private async storeChunk(module: string, chunk: PendingWrite[]): Promise<void> {
    if (chunk.length === 0) return;
    try {
      const stored = new Set(await this.whileAvailable(() => this.insert(module, chunk)));
      for (const w of chunk) w.resolve(stored.has(w.batch.fingerprint));
    } catch (err) {
      if (chunk.length === 1 || isConnectionError((err as { cause?: unknown }).cause)) {
        for (const w of chunk) w.reject(err);
        return;
      }
      for (const w of chunk) await this.storeChunk(module, [w]);
    }
  }

  /** One INSERT for the pages of a chunk; returns the fingerprints that got new rows. */
  private async insert(module: string, writes: readonly PendingWrite[]): Promise<string[]> {
    const fps: string[] = [];
    const idx: number[] = [];
    const mods: string[] = [];
    const runs: string[] = [];
    const urls: string[] = [];
    const items: string[] = [];
    for (const w of writes) {
      w.items.forEach((item, i) => {
        fps.push(w.batch.fingerprint);
        idx.push(i);
        mods.push(module);
        runs.push(w.batch.runId ?? "");
        urls.push(w.batch.url ?? "");
        items.push(item);
      });
    }
    const rows = await this.sql.unsafe(
      `INSERT INTO ${itemsTable(this.schema, module)} (fingerprint, item_index, module, run_id, url, item)
       SELECT f, i, m, r, u, j::jsonb FROM unnest($1::text[], $2::int[], $3::text[], $4::text[], $5::text[], $6::text[]) AS t(f, i, m, r, u, j)
       ON CONFLICT (fingerprint, item_index) DO NOTHING
       RETURNING fingerprint`,
      [fps, idx, mods, runs, urls, items] as never[],
    );
    return rows.map((r) => String(r.fingerprint));
  }

  private ensureTable(module: string): Promise<void> {
    let p = this.tables.get(module);
    if (p === undefined) {
      p = createItemsTable(this.sql, this.schema, module);
      this.tables.set(module, p);
      p.catch(() => this.tables.delete(module)); // try again next time
    }
    return p;
  }

  /**
   * Runs `op`, retrying while the database is unreachable (capped backoff) for at most the
   * outage budget; says once when it went away and when it is back. Other errors are thrown.
   */
  private async whileAvailable<T>(op: () => Promise<T>): Promise<T> {
    let since: number | undefined;
    let delay = 100;
    for (;;) {
      try {
        const v = await op();
        if (since !== undefined) this.onStatus(`${this.where} is back after ${((Date.now() - since) / 1000).toFixed(1)} s: storing items again`);
        return v;
      } catch (err) {
        if (!isConnectionError(err) || this.closed) throw new Error(`${this.where}: ${reason(err)}`, { cause: err });
        if (since === undefined) {
          since = Date.now();
          this.onStatus(`${this.where} unavailable (${reason(err)}): holding acks until it is back (up to ${this.outageMs / 1000} s)`);
        } else if (Date.now() - since > this.outageMs) {
          throw new Error(`${this.where} unavailable for over ${this.outageMs / 1000} s: ${reason(err)}`, { cause: err });
        }
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(delay * 2, 2000);
      }
    }
  }

  /** Waits for pending writes; ends the pool if the sink opened it. */
  async close(): Promise<void> {
    this.closed = true; // writes still waiting for an absent database give up (their messages stay un-acked)
    while (this.flushing) await this.flushing;
    if (this.ownsPool) await this.sql.end({ timeout: 5 });
  }
}

const RACE_CODES = new Set(["23505", "42P06", "42P07"]); // a concurrent CREATE ... IF NOT EXISTS lost the race

/** CREATE SCHEMA / TABLE IF NOT EXISTS for a module's items table. */
export async function createItemsTable(sql: Sql, schema: string, module: string): Promise<void> {
  checkModule(module);
  const run = async (text: string): Promise<void> => {
    try {
      await sql.unsafe(text);
    } catch (err) {
      if (!RACE_CODES.has(String((err as { code?: unknown }).code))) throw err;
    }
  };
  await run(`CREATE SCHEMA IF NOT EXISTS ${ident(schema)}`);
  await run(`CREATE TABLE IF NOT EXISTS ${itemsTable(schema, module)} (
    id bigserial PRIMARY KEY,
    fingerprint text NOT NULL,
    item_index integer NOT NULL,
    module text NOT NULL,
    run_id text NOT NULL,
    url text NOT NULL,
    item jsonb NOT NULL,
    stored_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (fingerprint, item_index)
  )`);
}

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
