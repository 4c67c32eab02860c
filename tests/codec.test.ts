// tests/codec.test.ts: the queue codecs (src/codec) against mocra's golden vectors
// (tests/fixtures/wire/golden_vectors.txt, produced by the Rust crates), the decode-acceptance probes,
// malformed input, and the request fingerprint (FORMAT §4.2).

import { readFileSync } from "node:fs";
import { Packr, unpack } from "msgpackr";
import { describe, expect, it } from "vitest";
import { bincodeCodec, type Codec, CodecError, codecByName, formatF32, jsonCodec, msgpackCodec } from "../src/codec/index.ts";
import {
  type CookieItem,
  type ErrorTaskModel,
  fingerprint,
  NIL_UUID,
  type ParserTaskModel,
  type Request,
  type Response,
  request,
  response,
  type TaskModel,
  type Topic,
  type TopicMessages,
} from "../src/model/index.ts";

// ---- golden vectors ----------------------------------------------------------------------------

interface Vectors {
  json?: string;
  msgpack?: string;
  bincode?: string;
}

const GOLDEN_PATH = new URL("./fixtures/wire/golden_vectors.txt", import.meta.url);
const GOLDEN_TEXT = readFileSync(GOLDEN_PATH, "utf8");

function parseGolden(text: string): Map<string, Vectors> {
  const out = new Map<string, Vectors>();
  let current: Vectors | undefined;
  for (const line of text.split("\n")) {
    const header = /^===== (.+)$/.exec(line);
    if (header) {
      current = {};
      out.set(header[1].trim(), current);
      continue;
    }
    const m = /^(json|msgpack|bincode)\b.*?\((\d+) B\): (.*)$/.exec(line);
    if (m && current) {
      const size = m[1] === "json" ? Buffer.byteLength(m[3]) : m[3].length / 2;
      if (size !== Number(m[2])) throw new Error(`golden ${m[1]} line of ${size} bytes says ${m[2]} B`);
      current[m[1] as keyof Vectors] = m[3];
    }
  }
  return out;
}

const GOLDEN = parseGolden(GOLDEN_TEXT);
function golden(name: string): Required<Vectors> {
  const v = GOLDEN.get(name);
  if (!v?.json || !v.msgpack || !v.bincode) throw new Error(`golden vector "${name}" not found`);
  return v as Required<Vectors>;
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");
const fromHex = (h: string): Uint8Array => new Uint8Array(Buffer.from(h, "hex"));
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
const text = (b: Uint8Array): string => new TextDecoder().decode(b);

// ---- the fixed inputs (FORMAT.md Appendix A) ---------------------------------------------------

const RUN_ID = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";
const ID = "0190a1b2-c3d4-7e5f-8a9b-000000000001";

const TASK: TaskModel = { account: "acc", platform: "plat", module: ["m1"], priority: "high", runId: RUN_ID };

const PARSER_TASK: ParserTaskModel = {
  id: ID,
  accountTask: TASK,
  timestamp: 1700000000,
  metadata: { k: "v" },
  context: { moduleId: null, stepIdx: 1, epoch: null, stayCurrentStep: false },
  runId: RUN_ID,
  prefixRequest: NIL_UUID,
};

const ERROR_TASK: ErrorTaskModel = {
  id: ID,
  accountTask: TASK,
  errorMsg: "boom",
  timestamp: 1700000000,
  // Value::from(MetaData::default()): an object of STRINGS, keys as the golden build sorted them
  metadata: { login_info: "null", module_config: "null", task: "null", trait_meta: "null" },
  context: { moduleId: null, stepIdx: null, epoch: null, stayCurrentStep: false },
  runId: RUN_ID,
  prefixRequest: NIL_UUID,
};

const REQUEST: Request = request({
  id: ID,
  platform: "plat",
  account: "acc",
  module: "m1",
  url: "http://example.com/a",
  method: "GET",
  headers: [{ key: "User-Agent", value: "x" }],
  json: { q: 1 },
  body: new Uint8Array([1, 2, 200]),
  runId: RUN_ID,
  prefixRequest: NIL_UUID,
  priority: "normal",
});

const COOKIE: CookieItem = {
  name: "sid",
  value: "abc",
  domain: "example.com",
  path: "/",
  expires: null,
  maxAge: null,
  secure: false,
  httpOnly: true,
};
const REQUEST_COOKIE: Request = { ...REQUEST, cookies: [COOKIE] };

const REQUEST_PROXY: Request = {
  ...REQUEST,
  proxy: {
    kind: "IpProxy",
    value: { ip: "1.2.3.4", port: 8080, username: null, password: null, proxyType: "http", rateLimit: 2.5 },
  },
};

const RESPONSE: Response = response({
  id: ID,
  platform: "plat",
  account: "acc",
  module: "m1",
  statusCode: 200,
  content: new Uint8Array([104, 105, 0xff]),
  headers: [["content-type", "text/html"]],
  runId: RUN_ID,
  prefixRequest: NIL_UUID,
  priority: "low",
});

interface Case<K extends Topic = Topic> {
  name: string;
  topic: K;
  value: TopicMessages[K];
}
const CASES: Case[] = [
  { name: "TaskModel", topic: "task", value: TASK },
  { name: "ParserTaskModel", topic: "parser_task", value: PARSER_TASK },
  { name: "ErrorTaskModel (metadata from MetaData::default())", topic: "error_task", value: ERROR_TASK },
  { name: "Request (no cookies)", topic: "request", value: REQUEST },
  { name: "Request (IpProxy)", topic: "request", value: REQUEST_PROXY },
  { name: "Response", topic: "response", value: RESPONSE },
];

const CODECS: Array<[string, Codec, keyof Vectors]> = [
  ["json", jsonCodec, "json"],
  ["msgpack", msgpackCodec, "msgpack"],
  ["bincode", bincodeCodec, "bincode"],
];

function vectorBytes(kind: keyof Vectors, v: Vectors): Uint8Array {
  const s = v[kind];
  if (s === undefined) throw new Error(`no ${kind} vector`);
  return kind === "json" ? utf8(s) : fromHex(s);
}

/** Whatever `fn` throws, it must be a CodecError (returns it), and it must throw. */
function codecErrorOf(fn: () => unknown): CodecError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(CodecError);
    return e as CodecError;
  }
  throw new Error("expected a CodecError, but nothing was thrown");
}

// ---- tests -------------------------------------------------------------------------------------

describe("golden vectors file", () => {
  it("is found and parsed", () => {
    expect(GOLDEN.size).toBeGreaterThanOrEqual(8);
    for (const c of CASES) expect(() => golden(c.name)).not.toThrow();
    expect(golden("TaskModel").msgpack).toBe("95a3616363a4706c617491a26d31a468696768c4100190a1b2c3d47e5f8a9b0c1d2e3f4a5b");
  });
});

describe.each(CODECS)("%s codec: golden vectors", (_name, codec, kind) => {
  it.each(CASES.map((c) => [c.name, c] as const))("%s: encode is byte-exact", (_n, c) => {
    const want = vectorBytes(kind, golden(c.name));
    const got = codec.encode(c.topic, c.value);
    if (kind === "json") expect(text(got)).toBe(text(want));
    expect(hex(got)).toBe(hex(want));
  });

  it.each(CASES.map((c) => [c.name, c] as const))("%s: decode gives the value back", (_n, c) => {
    expect(codec.decode(c.topic, vectorBytes(kind, golden(c.name)))).toEqual(c.value);
  });

  it.each(CASES.map((c) => [c.name, c] as const))("%s: decode(encode(x)) == x", (_n, c) => {
    const back = codec.decode(c.topic, codec.encode(c.topic, c.value));
    expect(back).toEqual(c.value);
    expect(hex(codec.encode(c.topic, back))).toBe(hex(codec.encode(c.topic, c.value)));
  });
});

describe("Request with one cookie", () => {
  const v = golden("Request (one cookie)");
  // the 8-element array rmp_serde writes (and mocra cannot read back)
  const COOKIE_ARRAY = "98a3736964a3616263ab6578616d706c652e636f6da12fc0c0c2c3";
  // the map we write instead (FORMAT §2.6), keys in declaration order
  const mapHex =
    "88" +
    "a4" + Buffer.from("name").toString("hex") + "a3" + Buffer.from("sid").toString("hex") +
    "a5" + Buffer.from("value").toString("hex") + "a3" + Buffer.from("abc").toString("hex") +
    "a6" + Buffer.from("domain").toString("hex") + "ab" + Buffer.from("example.com").toString("hex") +
    "a4" + Buffer.from("path").toString("hex") + "a1" + "2f" +
    "a7" + Buffer.from("expires").toString("hex") + "c0" +
    "a7" + Buffer.from("max_age").toString("hex") + "c0" +
    "a6" + Buffer.from("secure").toString("hex") + "c2" +
    "a8" + Buffer.from("httpOnly").toString("hex") + "c3";

  it("json: encode is byte-exact, decode and round trip", () => {
    expect(text(jsonCodec.encode("request", REQUEST_COOKIE))).toBe(v.json);
    expect(jsonCodec.decode("request", utf8(v.json))).toEqual(REQUEST_COOKIE);
    expect(jsonCodec.decode("request", jsonCodec.encode("request", REQUEST_COOKIE))).toEqual(REQUEST_COOKIE);
  });

  it("msgpack: the golden vector (cookie as an 8-array) decodes", () => {
    expect(v.msgpack).toContain(`9191${COOKIE_ARRAY}`);
    expect(msgpackCodec.decode("request", fromHex(v.msgpack))).toEqual(REQUEST_COOKIE);
  });

  it("msgpack: we emit the cookie as a map keyed by field name, otherwise byte-exact", () => {
    expect(mapHex).toBe(
      "88a46e616d65a3736964a576616c7565a3616263a6646f6d61696eab6578616d706c652e636f6da470617468a12f" +
        "a765787069726573c0a76d61785f616765c0a6736563757265c2a8687474704f6e6c79c3",
    );
    const got = hex(msgpackCodec.encode("request", REQUEST_COOKIE));
    expect(got).toBe(v.msgpack.replace(COOKIE_ARRAY, mapHex));
    // an independent msgpack reader sees a map there
    const decoded = unpack(Buffer.from(got, "hex")) as unknown[];
    expect(decoded[7]).toEqual([[{ name: "sid", value: "abc", domain: "example.com", path: "/", expires: null, max_age: null, secure: false, httpOnly: true }]]);
  });

  it("msgpack: our map form decodes back", () => {
    expect(msgpackCodec.decode("request", msgpackCodec.encode("request", REQUEST_COOKIE))).toEqual(REQUEST_COOKIE);
  });
});

describe("bincode specifics (FORMAT §2.4)", () => {
  const task = golden("TaskModel").bincode;

  it("Request with one cookie: the 8 serialized CookieItem fields, byte-exact both ways", () => {
    const v = golden("Request (one cookie)").bincode;
    expect(hex(bincodeCodec.encode("request", REQUEST_COOKIE))).toBe(v);
    expect(bincodeCodec.decode("request", fromHex(v))).toEqual(REQUEST_COOKIE);
  });

  it("trailing bytes are accepted, as bincode::deserialize does", () => {
    expect(bincodeCodec.decode("task", fromHex(`${task}deadbeef`))).toEqual(TASK);
  });

  it("Priority is the u32 variant index; 3 and above are rejected", () => {
    const high = "02000000" + "1000000000000000"; // High = 2, then the uuid length
    expect(task).toContain(high);
    for (const [i, p] of [["00000000", "low"], ["01000000", "normal"], ["02000000", "high"]] as const) {
      expect(bincodeCodec.decode("task", fromHex(task.replace(high, i + high.slice(8)))).priority).toBe(p);
    }
    const err = codecErrorOf(() => bincodeCodec.decode("task", fromHex(task.replace(high, `03000000${high.slice(8)}`))));
    expect(err.message).toMatch(/TaskModel\.priority: invalid value: integer 3/);
    for (const p of ["low", "normal", "high"] as const) {
      expect(hex(bincodeCodec.encode("task", { ...TASK, priority: p }))).toContain(`0${["low", "normal", "high"].indexOf(p)}000000${high.slice(8)}`);
    }
  });

  it("an Option or bool tag other than 0/1 and a bad UUID length are errors naming the field", () => {
    // TaskModel.module is Option<Vec<String>>: its tag is the byte after "plat"
    const tagAt = task.indexOf("706c6174") + 8;
    expect(task.slice(tagAt, tagAt + 2)).toBe("01");
    const badTag = task.slice(0, tagAt) + "02" + task.slice(tagAt + 2);
    expect(codecErrorOf(() => bincodeCodec.decode("task", fromHex(badTag))).message).toMatch(/TaskModel\.module: invalid Option tag 2/);
    const none = task.slice(0, tagAt) + "00" + task.slice(task.indexOf("6d31", tagAt) + 4); // drop Some(["m1"])
    expect(bincodeCodec.decode("task", fromHex(none)).module).toBeNull();
    const badUuid = task.replace("020000001000000000000000", "020000000f00000000000000");
    expect(codecErrorOf(() => bincodeCodec.decode("task", fromHex(badUuid))).message).toMatch(/run_id: expected a UUID \(16 bytes\), got 15/);
    const pt = golden("ParserTaskModel").bincode;
    const stay = pt.indexOf("0001010000000000") + 2; // context: module_id None, step_idx Some(1u32), epoch None, stay false
    const badBool = pt.slice(0, stay + 12) + "07" + pt.slice(stay + 14);
    expect(codecErrorOf(() => bincodeCodec.decode("parser_task", fromHex(badBool))).message).toMatch(/context\.stay_current_step: invalid bool tag 7/);
  });

  it("a huge length prefix is an error, not an allocation", () => {
    const huge = `ffffffffffffff7f${task.slice(16)}`;
    expect(codecErrorOf(() => bincodeCodec.decode("task", fromHex(huge))).message).toMatch(/TaskModel\.account: length .* cannot fit/);
  });

  it("u16/u32/u64 widths, big bodies and non-ASCII text round-trip", () => {
    for (const ts of [0, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1]) {
      const b = bincodeCodec.encode("parser_task", { ...PARSER_TASK, timestamp: ts });
      expect(bincodeCodec.decode("parser_task", b).timestamp).toBe(ts);
    }
    expect(hex(bincodeCodec.encode("parser_task", { ...PARSER_TASK, timestamp: 2 ** 32 }))).toContain("0000000001000000");
    const content = new Uint8Array(100_000).map((_, i) => (i * 7) & 0xff);
    const big: Response = { ...RESPONSE, content, statusCode: 65535, platform: "日本語 😀".repeat(30) };
    const back = bincodeCodec.decode("response", bincodeCodec.encode("response", big));
    expect(Buffer.from(back.content).equals(Buffer.from(content))).toBe(true);
    expect({ ...back, content: null }).toEqual({ ...big, content: null });
  });
});

describe("decode-acceptance probes (end of golden_vectors.txt)", () => {
  const taskMsgpack = golden("TaskModel").msgpack;
  const HIGH = "a468696768"; // fixstr "high"

  it("msgpack Priority as int 0/1/2 -> low/normal/high", () => {
    expect(taskMsgpack).toContain(HIGH);
    for (const [i, p] of [["00", "low"], ["01", "normal"], ["02", "high"]] as const) {
      expect(msgpackCodec.decode("task", fromHex(taskMsgpack.replace(HIGH, i))).priority).toBe(p);
    }
    expect(msgpackCodec.decode("task", fromHex(taskMsgpack.replace(HIGH, "a66e6f726d616c"))).priority).toBe("normal");
  });

  it("msgpack Priority as int 5 or 10 -> error", () => {
    for (const i of ["05", "0a"]) {
      const err = codecErrorOf(() => msgpackCodec.decode("task", fromHex(taskMsgpack.replace(HIGH, i))));
      expect(err.message).toMatch(/priority/);
      expect(err.message).toMatch(/variant index 0 <= i < 3/);
    }
  });

  it("JSON Priority 5, 1 or \"NORMAL\" -> error", () => {
    const json = golden("TaskModel").json;
    for (const bad of ["5", "1", '"NORMAL"']) {
      const err = codecErrorOf(() => jsonCodec.decode("task", utf8(json.replace('"priority":"high"', `"priority":${bad}`))));
      expect(err.message).toMatch(/TaskModel\.priority/);
    }
    expect(codecErrorOf(() => jsonCodec.decode("task", utf8(json.replace('"high"', '"NORMAL"')))).message).toMatch(
      /unknown variant "NORMAL", expected one of "low", "normal", "high"/,
    );
  });

  it("JSON metadata given as an object -> error", () => {
    const json = golden("ParserTaskModel").json;
    const bad = json.replace('"metadata":"{\\"k\\":\\"v\\"}"', '"metadata":{"k":"v"}');
    expect(bad).not.toBe(json);
    const err = codecErrorOf(() => jsonCodec.decode("parser_task", utf8(bad)));
    expect(err.message).toMatch(/ParserTaskModel\.metadata/);
  });

  it("msgpack uuid given as str -> error", () => {
    const mp = golden("ParserTaskModel").msgpack;
    const bin = `c410${ID.replace(/-/g, "")}`;
    expect(mp.startsWith(`97${bin}`)).toBe(true);
    const asStr = mp.replace(bin, `d924${Buffer.from(ID).toString("hex")}`);
    const err = codecErrorOf(() => msgpackCodec.decode("parser_task", fromHex(asStr)));
    expect(err.message).toMatch(/ParserTaskModel\.id: expected a UUID \(16-byte bin\), got a string/);
  });

  it("msgpack Vec<u8> given as bin is accepted (as rmp-serde >= 1.3 does; 1.1.1 rejects it)", () => {
    const mp = golden("Response").msgpack;
    const asBin = mp.replace("936869ccff", "c4036869ff");
    expect(asBin).not.toBe(mp);
    expect(msgpackCodec.decode("response", fromHex(asBin))).toEqual(RESPONSE);
  });
});

describe("other decode rules", () => {
  it("msgpack structs as maps (rmp to_vec_named) are accepted, unknown keys ignored", () => {
    const packr = new Packr({ useRecords: false });
    const uuidBin = (u: string): Buffer => Buffer.from(u.replace(/-/g, ""), "hex");
    const task = { account: "acc", platform: "plat", module: ["m1"], priority: "high", run_id: uuidBin(RUN_ID), extra: [1, { x: 2 }] };
    expect(msgpackCodec.decode("task", packr.pack(task))).toEqual(TASK);
    const pt = {
      id: uuidBin(ID),
      account_task: task,
      timestamp: 1700000000,
      metadata: '{"k":"v"}',
      context: { step_idx: 1, module_id: null, epoch: null }, // stay_current_step: serde(default)
      run_id: uuidBin(RUN_ID),
      prefix_request: uuidBin(NIL_UUID),
    };
    expect(msgpackCodec.decode("parser_task", packr.pack(pt))).toEqual(PARSER_TASK);
  });

  it("JSON: missing Option -> None, missing serde(default) -> default (fresh v7 run_id), unknown fields ignored", () => {
    const t = jsonCodec.decode("task", utf8('{"platform":"plat","account":"acc","zzz":{"a":[1]}}'));
    expect(t.module).toBeNull();
    expect(t.priority).toBe("normal");
    expect(t.runId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(t.runId).not.toBe(NIL_UUID);
    const ctx = jsonCodec.decode("parser_task", utf8(golden("ParserTaskModel").json.replace(',"stay_current_step":false', ""))).context;
    expect(ctx.stayCurrentStep).toBe(false);
  });

  it("JSON: a missing required field is an error naming the field and its type", () => {
    expect(codecErrorOf(() => jsonCodec.decode("task", utf8('{"platform":"plat"}'))).message).toMatch(
      /TaskModel\.account: missing field "account" \(String\)/,
    );
    const noPrefix = golden("ParserTaskModel").json.replace(/,"prefix_request":"[^"]*"/, "");
    expect(codecErrorOf(() => jsonCodec.decode("parser_task", utf8(noPrefix))).message).toMatch(
      /missing field "prefix_request" \(Uuid\)/,
    );
  });

  it("JSON: json/form hold JSON strings; null is None, \"null\" is Some(null)", () => {
    const r = { ...REQUEST, json: null, form: [1, "x", { a: true }] };
    const bytes = jsonCodec.encode("request", r);
    expect(text(bytes)).toContain('"json":"null","body":[1,2,200],"form":"[1,\\"x\\",{\\"a\\":true}]"');
    expect(jsonCodec.decode("request", bytes)).toEqual(r);
    expect(msgpackCodec.decode("request", msgpackCodec.encode("request", r))).toEqual(r);
    const none = { ...REQUEST, json: undefined };
    expect(text(jsonCodec.encode("request", none))).toContain('"json":null');
    expect(jsonCodec.decode("request", jsonCodec.encode("request", none)).json).toBeUndefined();
  });

  it("JSON cookies: aliases expirationDate / max-age / maxAge, ms timestamps, date strings, path default", () => {
    const withCookies = (cookies: string): Uint8Array =>
      utf8(golden("Request (no cookies)").json.replace('"cookies":{"cookies":[]}', `"cookies":{"cookies":[${cookies}]}`));
    const decode = (c: string): CookieItem => jsonCodec.decode("request", withCookies(c)).cookies[0];
    expect(decode('{"name":"a","value":"b"}')).toEqual({
      name: "a", value: "b", domain: "", path: "/", expires: null, maxAge: null, secure: false, httpOnly: null,
    });
    const far = 4102444800; // 2100-01-01 00:00:00 UTC
    expect(decode(`{"name":"a","value":"b","expirationDate":${far}.7,"max-age":"60"}`)).toMatchObject({ expires: far, maxAge: 60 });
    expect(decode(`{"name":"a","value":"b","expires":${far}000,"maxAge":5}`)).toMatchObject({ expires: far, maxAge: 5 });
    expect(decode('{"name":"a","value":"b","expires":"2100-01-01 00:00:00","max_age":7}')).toMatchObject({ expires: far, maxAge: 7 });
    expect(decode('{"name":"a","value":"b","expires":"2100/1/1 00:00:00","max_age":7}')).toMatchObject({ expires: far });
    // no max age given: derived from expires - now
    const derived = decode(`{"name":"a","value":"b","expires":${far}}`);
    expect(derived.maxAge).toBeGreaterThan(far - Date.now() / 1000 - 5);
    expect(derived.maxAge).toBeLessThanOrEqual(far - Math.floor(Date.now() / 1000));
    expect(decode('{"name":"a","value":"b","expires":1000,"max_age":null}').maxAge).toBe(0);
    expect(codecErrorOf(() => decode('{"name":1,"value":"b"}')).message).toMatch(/cookies\.0: field "name"/);
  });

  it("msgpack: rejects a struct array of the wrong length and a truncated one", () => {
    const mp = golden("TaskModel").msgpack;
    expect(codecErrorOf(() => msgpackCodec.decode("task", fromHex(`96${mp.slice(2)}c0`))).message).toMatch(/invalid length 6/);
    // trailing serde(default) fields may be left out of the array
    const short = msgpackCodec.decode("task", fromHex(`93${mp.slice(2, mp.indexOf("a468696768"))}`));
    expect(short.priority).toBe("normal");
    expect(codecErrorOf(() => msgpackCodec.decode("task", fromHex(`92a3616363a4706c6174`))).message).toMatch(/invalid length 2/);
  });

  it("UUID text: other forms the uuid crate parses are normalized; garbage is rejected", () => {
    const json = golden("TaskModel").json;
    const upper = json.replace(RUN_ID, RUN_ID.toUpperCase());
    expect(jsonCodec.decode("task", utf8(upper)).runId).toBe(RUN_ID);
    expect(jsonCodec.decode("task", utf8(json.replace(RUN_ID, RUN_ID.replace(/-/g, "")))).runId).toBe(RUN_ID);
    expect(codecErrorOf(() => jsonCodec.decode("task", utf8(json.replace(RUN_ID, "not-a-uuid")))).message).toMatch(/run_id/);
  });
});

describe("encode", () => {
  it("f32 is formatted like serde_json (ryu)", () => {
    const cases: Array<[number, string]> = [
      [2.5, "2.5"], [3, "3.0"], [0, "0.0"], [-0, "-0.0"], [0.1, "0.1"], [1 / 3, "0.33333334"],
      [123456789, "123456790.0"], [1e13, "1e13"], [1.5e13, "1.5e13"], [1e12, "1000000000000.0"],
      [0.000001, "0.000001"], [1e-7, "1e-7"], [1.5e-7, "1.5e-7"], [3.4028234663852886e38, "3.4028235e38"],
      [1.401298464324817e-45, "1e-45"], [-2.5, "-2.5"], [Number.NaN, "null"], [Infinity, "null"],
    ];
    for (const [x, s] of cases) expect([x, formatF32(x)]).toEqual([x, s]);
    const p = { ...REQUEST_PROXY, proxy: { kind: "IpProxy" as const, value: { ...(REQUEST_PROXY.proxy?.value as object), rateLimit: 3 } } };
    expect(text(jsonCodec.encode("request", p as Request))).toContain('"rate_limit":3.0}');
  });

  it("Tunnel proxies round-trip in both codecs", () => {
    const r: Request = {
      ...REQUEST,
      proxy: {
        kind: "Tunnel",
        value: { name: "t", endpoint: "e:1", username: "u", password: null, tunnelType: "http", expireTime: "x", rateLimit: 0.5 },
      },
    };
    expect(text(jsonCodec.encode("request", r))).toContain(
      '"proxy":{"Tunnel":{"name":"t","endpoint":"e:1","username":"u","password":null,"tunnel_type":"http","expire_time":"x","rate_limit":0.5}}',
    );
    for (const [, codec] of CODECS) expect(codec.decode("request", codec.encode("request", r))).toEqual(r);
  });

  it("msgpack: string/array/int size classes, non-ASCII text and big bodies round-trip", () => {
    const sizes = [0, 31, 32, 255, 256, 65535, 65536];
    for (const n of sizes) {
      const s = "a".repeat(n);
      const b = msgpackCodec.encode("task", { ...TASK, account: s });
      const h = hex(b.subarray(1, 6));
      if (n < 32) expect(h.slice(0, 2)).toBe((0xa0 | n).toString(16));
      else if (n < 256) expect(h.slice(0, 4)).toBe(`d9${n.toString(16).padStart(2, "0")}`);
      else if (n < 65536) expect(h.slice(0, 6)).toBe(`da${n.toString(16).padStart(4, "0")}`);
      else expect(h.slice(0, 10)).toBe(`db${n.toString(16).padStart(8, "0")}`);
      expect(msgpackCodec.decode("task", b).account).toBe(s);
    }
    const uni = ["é", "日本語", "😀 emoji", "mixed ascii and ü".repeat(10), "\u0000\u001f\"\\"];
    for (const s of uni) {
      for (const [, codec] of CODECS) expect(codec.decode("task", codec.encode("task", { ...TASK, platform: s })).platform).toBe(s);
    }
    const content = new Uint8Array(100_000).map((_, i) => (i * 7) & 0xff);
    const big: Response = { ...RESPONSE, content, statusCode: 65535, headers: Array.from({ length: 20 }, (_, i) => [`h${i}`, "v"]) };
    for (const [, codec] of CODECS) {
      const back = codec.decode("response", codec.encode("response", big));
      expect(Buffer.from(back.content).equals(Buffer.from(content))).toBe(true); // (toEqual is slow on 100k elements)
      expect({ ...back, content: null }).toEqual({ ...big, content: null });
    }
    const mp = msgpackCodec.encode("response", big);
    expect(unpack(Buffer.from(mp))).toHaveLength(19); // an independent reader agrees on the structure
    // u64 size classes
    for (const ts of [0, 127, 128, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1]) {
      const pt = { ...PARSER_TASK, timestamp: ts };
      expect(msgpackCodec.decode("parser_task", msgpackCodec.encode("parser_task", pt)).timestamp).toBe(ts);
      expect(jsonCodec.decode("parser_task", jsonCodec.encode("parser_task", pt)).timestamp).toBe(ts);
    }
    expect(hex(msgpackCodec.encode("parser_task", { ...PARSER_TASK, timestamp: 2 ** 32 }))).toContain("cf0000000100000000");
  });

  it("values mocra cannot represent are a CodecError naming the field", () => {
    for (const [, codec] of CODECS) {
      expect(codecErrorOf(() => codec.encode("task", { ...TASK, priority: "urgent" as "high" })).message).toMatch(/TaskModel\.priority/);
      expect(codecErrorOf(() => codec.encode("task", { ...TASK, runId: "x" })).message).toMatch(/TaskModel\.run_id: expected a UUID/);
      expect(codecErrorOf(() => codec.encode("parser_task", { ...PARSER_TASK, timestamp: -1 })).message).toMatch(/timestamp: expected u64/);
      expect(codecErrorOf(() => codec.encode("response", { ...RESPONSE, statusCode: 70000 })).message).toMatch(/status_code: expected u16/);
      expect(codecErrorOf(() => codec.encode("request", { ...REQUEST, headers: [{ key: "k", value: 1 as unknown as string }] })).message).toMatch(
        /Request\.headers\.headers\.0\.value: expected a string/,
      );
      expect(codecErrorOf(() => codec.encode("task", null as unknown as TaskModel)).message).toMatch(/expected an object/);
    }
  });
});

describe("malformed input always throws CodecError", () => {
  // xorshift32, so failures reproduce
  let seed = 0x12345678;
  const rand = (): number => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) / 2 ** 32;
  };
  const topics: Topic[] = ["task", "request", "response", "parser_task", "error_task"];
  const tryDecode = (codec: Codec, topic: Topic, bytes: Uint8Array): void => {
    try {
      codec.decode(topic, bytes);
    } catch (e) {
      if (!(e instanceof CodecError)) throw new Error(`${codec.name}/${topic} threw a non-CodecError for ${hex(bytes)}: ${String(e)}`);
    }
  };

  it("every truncation of every vector", () => {
    for (const [name, v] of GOLDEN) {
      const c = CASES.find((x) => x.name === name) ?? (name === "Request (one cookie)" ? { topic: "request" as Topic } : undefined);
      if (!c) continue;
      for (const [, codec, kind] of CODECS) {
        const full = vectorBytes(kind, v);
        for (let n = 0; n < full.length; n++) codecErrorOf(() => codec.decode(c.topic, full.subarray(0, n)));
      }
    }
  });

  it("random bytes and random mutations of the vectors", () => {
    for (let i = 0; i < 3000; i++) {
      const junk = new Uint8Array(Math.floor(rand() * 64)).map(() => Math.floor(rand() * 256));
      for (const [, codec] of CODECS) tryDecode(codec, topics[i % topics.length], junk);
    }
    for (const c of CASES) {
      for (const [, codec, kind] of CODECS) {
        const full = vectorBytes(kind, golden(c.name));
        for (let i = 0; i < 400; i++) {
          const m = full.slice();
          const flips = 1 + Math.floor(rand() * 3);
          for (let f = 0; f < flips; f++) m[Math.floor(rand() * m.length)] = Math.floor(rand() * 256);
          tryDecode(codec, c.topic, m);
        }
      }
    }
  });

  it("specific bad payloads", () => {
    codecErrorOf(() => jsonCodec.decode("task", utf8("null")));
    codecErrorOf(() => jsonCodec.decode("task", utf8("[]")));
    codecErrorOf(() => jsonCodec.decode("task", new Uint8Array([0x7b, 0xff, 0x7d])));
    codecErrorOf(() => msgpackCodec.decode("task", new Uint8Array([0xdd, 0xff, 0xff, 0xff, 0xff])));
    codecErrorOf(() => msgpackCodec.decode("response", fromHex("dc0013c410")));
    codecErrorOf(() => msgpackCodec.decode("task", new Uint8Array()));
    codecErrorOf(() => msgpackCodec.decode("task", "95" as unknown as Uint8Array));
    codecErrorOf(() => jsonCodec.decode("nope" as Topic, utf8("{}")));
  });
});

describe("codecByName", () => {
  it("maps mocra's queue_codec names", () => {
    expect(codecByName("json")).toBe(jsonCodec);
    expect(codecByName("msgpack")).toBe(msgpackCodec);
    expect(codecByName("rmp")).toBe(msgpackCodec);
    expect(codecByName("JSON").name).toBe("json");
    expect(codecByName("bincode")).toBe(bincodeCodec);
    expect(codecByName("Msgpack")).toBe(msgpackCodec);
    expect(codecByName("RMP")).toBe(msgpackCodec);
    expect(codecByName(" BinCode ")).toBe(bincodeCodec);
    const err = codecErrorOf(() => codecByName("protobuf"));
    expect(err.message).toMatch(/"json", "msgpack", "rmp", "bincode"/);
    codecErrorOf(() => codecByName("toString"));
  });
});

describe("request fingerprint (FORMAT §4.2)", () => {
  it("matches mocra's md5 for the golden Request", () => {
    expect(fingerprint(REQUEST)).toBe("00b22979947e3c69e203f326272420e3");
  });
  it("matches with no json and no body", () => {
    expect(fingerprint({ ...REQUEST, json: undefined, body: null })).toBe("d77096158082c0cceeee379b40ef59c0");
    expect(fingerprint({ ...REQUEST, json: undefined, body: new Uint8Array() })).toBe("d77096158082c0cceeee379b40ef59c0");
  });
  it("hash_str overrides", () => {
    expect(fingerprint({ ...REQUEST, hashStr: "h" })).toBe("h");
  });
});
