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
import { itemTexts, UnstorableItemError } from "./item-text.ts";
import type { ItemBatch, ItemSink } from "./sink.ts";
import { byModule, type PendingWrite, WriteBatcher } from "./write-batcher.ts";

export const MODULE_PATTERN = /^[A-Za-z0-9_.-]+$/;
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
  /** `output.max_item_bytes` for batches that come without their texts */
  maxItemBytes?: number;
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

export function checkModule(module: string): void {
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

/** SQLSTATE class 22: the data itself is refused (e.g. \u0000 in jsonb), retrying cannot help. */
function isDataException(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" && code.startsWith("22");
}

function reason(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown } | null;
  const msg = typeof e?.message === "string" && e.message !== "" ? e.message : String(err);
  return typeof e?.code === "string" && !msg.includes(e.code) ? `${e.code}: ${msg}` : msg;
}

interface PageRows {
  batch: ItemBatch;
  items: readonly string[];
}

type Write = PendingWrite<PageRows, boolean>;

export class PostgresItemSink implements ItemSink {
  private readonly batcher = new WriteBatcher<PageRows, boolean>((writes) => this.flush(writes));
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
    private readonly options: PostgresItemSinkOptions = {},
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
    let items: readonly string[];
    try {
      items = itemTexts(batch, this.options.maxItemBytes);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.batcher.add({ batch, items });
  }

  private async flush(writes: Write[]): Promise<void> {
    await Promise.all([...byModule(writes, (w) => w.value.batch.module)].map(([module, list]) => this.storeModule(module, list)));
  }

  private async storeModule(module: string, writes: Write[]): Promise<void> {
    try {
      await this.whileAvailable(() => this.ensureTable(module));
    } catch (err) {
      for (const w of writes) w.reject(err);
      return;
    }
    // the same page twice in one flush (a redelivery): stored once, the copy answers "stored before"
    const firsts = new Map<string, Write>();
    for (const w of writes) {
      const first = firsts.get(w.value.batch.fingerprint);
      if (first === undefined) {
        firsts.set(w.value.batch.fingerprint, w);
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
    let chunk: Write[] = [];
    let rows = 0;
    for (const w of firsts.values()) {
      if (rows > 0 && rows + w.value.items.length > this.batchRows) {
        await this.storeChunk(module, chunk);
        chunk = [];
        rows = 0;
      }
      chunk.push(w);
      rows += w.value.items.length;
    }
    await this.storeChunk(module, chunk);
  }

  /**
   * Settles every write of a chunk. If the chunk's INSERT fails for a reason other than the
   * database being away (a value PostgreSQL refuses, such as a \u0000 in jsonb), each page is
   * tried alone, so only the bad page fails; a page whose data PostgreSQL refuses (SQLSTATE
   * class 22) fails as unstorable (dead-lettered, not retried).
   */
  private async storeChunk(module: string, chunk: Write[]): Promise<void> {
    if (chunk.length === 0) return;
    try {
      const stored = new Set(await this.whileAvailable(() => this.insert(module, chunk)));
      for (const w of chunk) w.resolve(stored.has(w.value.batch.fingerprint));
    } catch (err) {
      if (chunk.length === 1 || isConnectionError((err as { cause?: unknown }).cause)) {
        const refused = chunk.length === 1 && isDataException((err as { cause?: unknown }).cause);
        for (const w of chunk) w.reject(refused ? new UnstorableItemError(`${this.where}: ${reason((err as { cause?: unknown }).cause)} (it refuses an item of ${module})`, { cause: err }) : err);
        return;
      }
      for (const w of chunk) await this.storeChunk(module, [w]);
    }
  }

  /** One INSERT for the pages of a chunk; returns the fingerprints that got new rows. */
  private async insert(module: string, writes: readonly Write[]): Promise<string[]> {
    const fps: string[] = [];
    const idx: number[] = [];
    const mods: string[] = [];
    const runs: string[] = [];
    const urls: string[] = [];
    const items: string[] = [];
    for (const { value: w } of writes) {
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
    await this.batcher.drained();
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
