// tests/helpers/postgres.ts: PostgreSQL for integration tests: the machine's server on
// 127.0.0.1:5432 (database `test`, trust auth; one schema per test), and private throwaway
// servers in a temp dir on a free port, for tests that stop and restart the database (never
// the shared one).

import { execFile } from "node:child_process";
import { chmod, chown, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import postgres from "postgres";
import { freePort } from "./redis.ts";

const run = promisify(execFile);

export const PG_URL = "postgres://postgres@127.0.0.1:5432/test";
const PG_BIN = "/usr/lib/postgresql/15/bin";

/** A pool on `url` for test assertions (no notices). */
export function pgClient(url = PG_URL): postgres.Sql<Record<string, never>> {
  return postgres(url, { max: 2, onnotice: () => {}, connect_timeout: 5 });
}

export async function postgresReachable(url = PG_URL): Promise<boolean> {
  const sql = pgClient(url);
  try {
    await sql`SELECT 1`;
    return true;
  } catch {
    return false;
  } finally {
    await sql.end({ timeout: 1 }).catch(() => {});
  }
}

/** Whether the PostgreSQL tests run: skip with a message when it is not there, fail under CI. */
export async function requirePostgres(suite: string): Promise<boolean> {
  if (await postgresReachable()) return true;
  const msg = `${suite}: no PostgreSQL at 127.0.0.1:5432 (database test)`;
  if (process.env.CI === "true") throw new Error(`${msg} (CI=true: PostgreSQL is required)`);
  console.warn(`${msg}: skipping`);
  return false;
}

/** A unique schema name for one test. */
export function uniqueSchema(): string {
  return `t_${Math.random().toString(36).slice(2, 10)}`;
}

export async function dropSchema(schema: string): Promise<void> {
  const sql = pgClient();
  try {
    await sql.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await sql.end({ timeout: 1 });
  }
}

/** A private PostgreSQL server (initdb in a temp dir, run as the postgres user when we are root). */
export interface PrivatePostgres {
  url: string;
  port: number;
  stop(): Promise<void>;
  start(): Promise<void>;
  /** stops and deletes it */
  destroy(): Promise<void>;
}

export function privatePostgresAvailable(): Promise<boolean> {
  return run(join(PG_BIN, "initdb"), ["--version"]).then(
    () => true,
    () => false,
  );
}

export async function startPrivatePostgres(): Promise<PrivatePostgres> {
  const dir = await mkdtemp(join(tmpdir(), "mocra-pg-"));
  const data = join(dir, "data");
  const asRoot = process.getuid?.() === 0;
  if (asRoot) {
    const { stdout } = await run("id", ["-u", "postgres"]);
    const { stdout: gid } = await run("id", ["-g", "postgres"]);
    await chown(dir, Number(stdout.trim()), Number(gid.trim()));
  }
  await chmod(dir, 0o700);
  const pg = (bin: string, args: string[]) =>
    asRoot ? run("runuser", ["-u", "postgres", "--", join(PG_BIN, bin), ...args]) : run(join(PG_BIN, bin), args);
  await pg("initdb", ["-D", data, "-A", "trust", "-U", "postgres", "--no-sync"]);
  const port = await freePort();
  const opts = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off`;
  const start = async () => {
    await pg("pg_ctl", ["-D", data, "-o", opts, "-l", join(dir, "log"), "-w", "-t", "60", "start"]);
  };
  const stop = async () => {
    await pg("pg_ctl", ["-D", data, "-m", "fast", "-w", "-t", "60", "stop"]);
  };
  await start();
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    start,
    stop,
    destroy: async () => {
      await stop().catch(() => {});
      await rm(dir, { recursive: true, force: true });
    },
  };
}
