// Deno check of the bincode codec and the PostgreSQL items store (run by `deno task test` and
// .ci/run after deno_smoke.ts; also runs under Node: `npx tsx tests/deno_codec_postgres.ts`):
// every golden bincode vector decodes and re-encodes byte for byte, every truncation is a
// CodecError; the postgres store writes exactly once, survives a redelivery, exports CSV.
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { bincodeCodec, CodecError } from "../src/codec/index.ts";
import { parseConfig } from "../src/config/index.ts";
import type { Topic } from "../src/model/index.ts";
import { exportPostgresItems } from "../src/storage/export-postgres.ts";
import { openPostgres, PostgresItemSink } from "../src/storage/postgres-sink.ts";

function check(cond: boolean, what: string): void {
  if (!cond) {
    console.error(`codec/postgres check FAILED: ${what}`);
    process.exit(1);
  }
}

const runtime = "Deno" in globalThis ? "deno" : "node";
const hex = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
const fromHex = (h: string): Uint8Array => new Uint8Array(h.match(/../g)!.map((x) => parseInt(x, 16)));

// ---- bincode against the golden vectors
const TOPIC_OF: Record<string, Topic> = {
  TaskModel: "task",
  ParserTaskModel: "parser_task",
  "ErrorTaskModel (metadata from MetaData::default())": "error_task",
  "Request (no cookies)": "request",
  "Request (one cookie)": "request",
  "Request (IpProxy)": "request",
  Response: "response",
};
const golden = await readFile(new URL("./fixtures/wire/golden_vectors.txt", import.meta.url), "utf8");
let section = "";
let vectors = 0;
let truncations = 0;
for (const line of golden.split("\n")) {
  const h = /^===== (.+)$/.exec(line);
  if (h) section = h[1].trim();
  const m = /^bincode \((\d+) B\): ([0-9a-f]+)$/.exec(line);
  const topic = TOPIC_OF[section];
  if (!m || topic === undefined) continue;
  const bytes = fromHex(m[2]);
  check(bytes.length === Number(m[1]), `${section}: vector length`);
  const back = bincodeCodec.encode(topic, bincodeCodec.decode(topic, bytes));
  check(hex(back) === m[2], `${section}: bincode decode + encode is not byte-exact`);
  for (let n = 0; n < bytes.length; n++) {
    try {
      bincodeCodec.decode(topic, bytes.subarray(0, n));
      check(false, `${section}: a truncation to ${n} bytes decoded`);
    } catch (e) {
      check(e instanceof CodecError, `${section}: truncation to ${n} bytes threw ${String(e)}`);
      truncations++;
    }
  }
  vectors++;
}
check(vectors === 7, `expected 7 bincode vectors, found ${vectors}`);
console.log(`bincode check passed on ${runtime}: ${vectors} golden vectors byte-exact, ${truncations} truncations rejected with CodecError`);

// ---- the PostgreSQL store (machine's server; skipped without one unless CI=true)
const schema = `t_${Math.random().toString(36).slice(2, 10)}`;
const config = parseConfig(`[output]\nsink = "postgres"\n[db]\nurl = "postgres://postgres@127.0.0.1:5432/test"\ndatabase_schema = "${schema}"\npool_size = 2\n`, "deno.toml");
let sink: PostgresItemSink | undefined;
try {
  sink = await PostgresItemSink.connect(config);
} catch (e) {
  if (process.env.CI === "true") check(false, `PostgreSQL is required under CI: ${String(e)}`);
  console.warn(`postgres check skipped on ${runtime}: ${String(e)}`);
}
if (sink !== undefined) {
  const sql = openPostgres(config);
  const dir = await mkdtemp(join(tmpdir(), "mocra-deno-pg-"));
  try {
    const batch = (i: number) => ({ module: "shop", fingerprint: `fp${i}`, runId: "r", url: `http://shop/${i}`, items: [{ title: `t${i}`, meta: { i } }, { title: `u${i}` }] });
    const first = await Promise.all(Array.from({ length: 20 }, (_, i) => sink!.write(batch(i))));
    const again = await Promise.all(Array.from({ length: 20 }, (_, i) => sink!.write(batch(i))));
    check(first.every(Boolean) && again.every((x) => !x), "postgres: a redelivered page was stored again");
    const [{ n }] = await sql.unsafe(`SELECT count(*)::int AS n FROM "${schema}".items_shop`);
    check(n === 40, `postgres: expected 40 rows, got ${n}`);
    const count = await exportPostgresItems(sql, schema, "shop", join(dir, "shop.csv"), { format: "csv" });
    const csv = (await readFile(join(dir, "shop.csv"), "utf8")).trim().split("\n");
    check(count === 40 && csv.length === 41 && csv[0] === "meta,title" && csv[1] === '"{""i"":0}",t0', `postgres: CSV export ${JSON.stringify(csv.slice(0, 2))}`);
    console.log(`postgres check passed on ${runtime}: 40 rows once each after a redelivery of every page, CSV export of ${count} items`);
  } finally {
    await sink.close();
    await sql.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await sql.end({ timeout: 1 });
    await rm(dir, { recursive: true, force: true });
  }
}
