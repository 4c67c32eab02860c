import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { isMainThread } from "node:worker_threads";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  CONFIG_FIELDS,
  ConfigError,
  cacheRedisConnection,
  defaultConfig,
  effectivePrefetch,
  formatConfig,
  loadConfig,
  parseConfig,
  queueCodecFormat,
  type Config,
} from "../src/config/index.ts";

const REPO = join(dirname(fileURLToPath(import.meta.url)), "..");

/** Runs `fn`, expects a ConfigError, returns it. */
function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error("expected a ConfigError");
}

const EXPECTED_DEFAULTS: Config = {
  name: "mocra",
  crawler: {
    taskConcurrency: 64,
    prefetch: 0,
    requestMaxRetries: 3,
    retryBaseDelayMs: 1000,
    retryMaxDelayMs: 60000,
    userAgent: "mocra-ts/0.1 (+https://github.com/mocra-ts)",
    dedupTtlSecs: 86400,
    dedupLayout: "buckets",
    modulePaths: [],
    proxyPath: "",
    generateBacklog: 1000,
    shutdownTimeoutSecs: 30,
    parseTimeoutSecs: 60,
    maxFollowsPerPage: 10000,
    obeyRobotsTxt: true,
    progressIntervalSecs: 5,
    keepQueryOrder: false,
    stripParams: ["utm_*", "fbclid", "gclid", "msclkid"],
    dedupItemsByCanonical: false,
    maxDepth: 0,
    maxRequests: 0,
    maxItems: 0,
    maxBarrenHops: 20,
  },
  downloadConfig: {
    timeout: 30,
    rateLimit: 0,
    enableRateLimit: true,
    domainConcurrency: 8,
    maxResponseSize: 10485760,
    maxRedirects: 10,
    enableCache: false,
    cacheTtl: 60,
    poolSize: 200,
    maxWaitMs: 5000,
    rateLimitKey: "domain",
    circuitFailures: 5,
    circuitOpenSecs: 30,
    proxyRateLimit: 0,
    proxyMaxFailures: 3,
    proxyCooldownSecs: 60,
    allowPrivateHosts: [],
    allowPrivateNetworks: false,
  },
  channelConfig: {
    queueCodec: "bincode",
    compressionThreshold: 1024,
    minidTime: 0,
    capacity: 10000,
    batchConcurrency: 500,
    nackMaxRetries: 0,
    nackBackoffMs: 0,
    nats: null,
    redis: {
      redisHost: "127.0.0.1",
      redisPort: 6379,
      redisDb: 0,
      redisUsername: "",
      redisPassword: "",
      tls: false,
      shards: 8,
      listenerCount: 1,
      claimMinIdle: 60000,
      claimCount: 100,
      claimInterval: 30000,
      connectTimeoutMs: 5000,
      reconnectBudgetSecs: 60,
    },
    blobStorage: { path: "" },
  },
  cache: { ttl: 300, compressionThreshold: 1024, l1MaxEntries: 10000, redis: null },
  output: { sink: "jsonl", path: "output", redisMaxLen: 0, redisSeenTtlSecs: 0, postgresBatchRows: 500, postgresOutageSecs: 600, maxItemBytes: 8388608, mode: "replace" },
  middleware: { userAgents: [], defaultHeaders: [], requiredFields: [], itemSchema: "", paths: [] },
  scheduler: { misfireToleranceSecs: 300, concurrency: 100, leaderLeaseSecs: 10 },
  db: { url: "", databaseSchema: "public", poolSize: 4, tls: false },
  state: { dir: "state", fsync: false, segmentMb: 16 },
  api: { port: 0, host: "127.0.0.1", apiKey: "", rateLimit: 0, allowedHosts: [], maxBodyBytes: 65536 },
  logger: { enabled: true, level: "info", format: "text" },
  browser: { executable: "", concurrency: 2, recyclePages: 200, blockResources: ["image", "font", "media"], launchTimeoutSecs: 30 },
  modules: {},
  rateLimits: {},
};

const FULL_TOML = `
name = "crawl-01.prod"

[crawler]
task_concurrency = 16
prefetch = 40
request_max_retries = 5
retry_base_delay_ms = 250
retry_max_delay_ms = 10000
user_agent = "bot/2"
dedup_ttl_secs = 0
dedup_layout = "keys"
module_paths = ["./extra", "/opt/mods"]
proxy_path = "proxies.txt"
generate_backlog = 50
shutdown_timeout_secs = 0
obey_robots_txt = false
progress_interval_secs = 0.5
keep_query_order = true
strip_params = ["sid"]
dedup_items_by_canonical = true
max_depth = 3
max_requests = 100
max_items = 50

[download_config]
timeout = 12.5
rate_limit = 2.5
enable_rate_limit = false
domain_concurrency = 4
max_response_size = 1024
max_redirects = 0
enable_cache = true
cache_ttl = 600
pool_size = 20
max_wait_ms = 0
rate_limit_key = "module"
circuit_failures = 2
circuit_open_secs = 1.5
proxy_rate_limit = 4
proxy_max_failures = 1
proxy_cooldown_secs = 0.5

[channel_config]
queue_codec = "msgpack"
compression_threshold = 0
minid_time = 24
capacity = 5
batch_concurrency = 10

[channel_config.redis]
redis_host = "redis.internal"
redis_port = 6380
redis_db = 2
redis_username = "crawler"
redis_password = "s3cret"
shards = 4
listener_count = 2
claim_min_idle = 1000
claim_count = 10
claim_interval = 500
connect_timeout_ms = 100
reconnect_budget_secs = 5

[channel_config.blob_storage]
path = "blobs"

[cache]
ttl = 0
compression_threshold = 64
l1_max_entries = 1

[cache.redis]
redis_host = "cache.internal"
redis_port = 6390
redis_db = 1
redis_username = "c"
redis_password = "p"
tls = true

[output]
sink = "stdout"
path = "out/items"
redis_max_len = 100000
redis_seen_ttl_secs = 86400
postgres_batch_rows = 50
postgres_outage_secs = 30
mode = "append"

[db]
database_schema = "crawl"
pool_size = 2
tls = true

[state]
dir = "var/state"
fsync = true
segment_mb = 4

[api]
port = 8080
host = "0.0.0.0"
api_key = "s3cret"
rate_limit = 2.5

[logger]
enabled = false
level = "debug"
format = "json"

[browser]
executable = "/opt/chromium/chrome"
concurrency = 4
recycle_pages = 50
block_resources = ["image"]
launch_timeout_secs = 10

[modules.books]
start_urls = ["https://books.toscrape.com/"]
max_pages = 3
nested = { depth = 2, follow = true }

[modules."with space"]
x = 1.5

[middleware]
user_agents = ["ua-1", "ua-2"]
default_headers = ["Accept-Language: en"]
required_fields = ["title"]
item_schema = "schema.json"

[scheduler]
misfire_tolerance_secs = 30
concurrency = 4
leader_lease_secs = 2

[rate_limits]
"example.com" = 2.5
"module:books" = 0
`;

const FULL_CONFIG: Config = {
  name: "crawl-01.prod",
  crawler: {
    taskConcurrency: 16,
    prefetch: 40,
    requestMaxRetries: 5,
    retryBaseDelayMs: 250,
    retryMaxDelayMs: 10000,
    userAgent: "bot/2",
    dedupTtlSecs: 0,
    dedupLayout: "keys",
    modulePaths: ["./extra", "/opt/mods"],
    proxyPath: "proxies.txt",
    generateBacklog: 50,
    shutdownTimeoutSecs: 0,
    parseTimeoutSecs: 60,
    maxFollowsPerPage: 10000,
    obeyRobotsTxt: false,
    progressIntervalSecs: 0.5,
    keepQueryOrder: true,
    stripParams: ["sid"],
    dedupItemsByCanonical: true,
    maxDepth: 3,
    maxRequests: 100,
    maxItems: 50,
    maxBarrenHops: 20,
  },
  downloadConfig: {
    timeout: 12.5,
    rateLimit: 2.5,
    enableRateLimit: false,
    domainConcurrency: 4,
    maxResponseSize: 1024,
    maxRedirects: 0,
    enableCache: true,
    cacheTtl: 600,
    poolSize: 20,
    maxWaitMs: 0,
    rateLimitKey: "module",
    circuitFailures: 2,
    circuitOpenSecs: 1.5,
    proxyRateLimit: 4,
    proxyMaxFailures: 1,
    proxyCooldownSecs: 0.5,
    allowPrivateHosts: [],
    allowPrivateNetworks: false,
  },
  channelConfig: {
    queueCodec: "msgpack",
    compressionThreshold: 0,
    minidTime: 24,
    capacity: 5,
    batchConcurrency: 10,
    nackMaxRetries: 0,
    nackBackoffMs: 0,
    nats: null,
    redis: {
      redisHost: "redis.internal",
      redisPort: 6380,
      redisDb: 2,
      redisUsername: "crawler",
      redisPassword: "s3cret",
      tls: false,
      shards: 4,
      listenerCount: 2,
      claimMinIdle: 1000,
      claimCount: 10,
      claimInterval: 500,
      connectTimeoutMs: 100,
      reconnectBudgetSecs: 5,
    },
    blobStorage: { path: "blobs" },
  },
  cache: {
    ttl: 0,
    compressionThreshold: 64,
    l1MaxEntries: 1,
    redis: {
      redisHost: "cache.internal",
      redisPort: 6390,
      redisDb: 1,
      redisUsername: "c",
      redisPassword: "p",
      tls: true,
    },
  },
  output: { sink: "stdout", path: "out/items", redisMaxLen: 100000, redisSeenTtlSecs: 86400, postgresBatchRows: 50, postgresOutageSecs: 30, maxItemBytes: 8388608, mode: "append" },
  middleware: { userAgents: ["ua-1", "ua-2"], defaultHeaders: ["Accept-Language: en"], requiredFields: ["title"], itemSchema: "schema.json", paths: [] },
  scheduler: { misfireToleranceSecs: 30, concurrency: 4, leaderLeaseSecs: 2 },
  db: { url: "", databaseSchema: "crawl", poolSize: 2, tls: true },
  state: { dir: "var/state", fsync: true, segmentMb: 4 },
  api: { port: 8080, host: "0.0.0.0", apiKey: "s3cret", rateLimit: 2.5, allowedHosts: [], maxBodyBytes: 65536 },
  logger: { enabled: false, level: "debug", format: "json" },
  browser: { executable: "/opt/chromium/chrome", concurrency: 4, recyclePages: 50, blockResources: ["image"], launchTimeoutSecs: 10 },
  modules: {
    books: {
      start_urls: ["https://books.toscrape.com/"],
      max_pages: 3,
      nested: { depth: 2, follow: true },
    },
    "with space": { x: 1.5 },
  },
  rateLimits: { "example.com": 2.5, "module:books": 0 },
};

describe("defaults", () => {
  it("defaultConfig() has every documented default", () => {
    expect(defaultConfig()).toEqual(EXPECTED_DEFAULTS);
  });

  it("an empty (or comment-only) file gives the defaults", () => {
    expect(parseConfig("", "config.toml")).toEqual(EXPECTED_DEFAULTS);
    expect(parseConfig("# nothing here\n\n", "config.toml")).toEqual(EXPECTED_DEFAULTS);
  });

  it("returns fresh objects each time", () => {
    const a = defaultConfig();
    a.crawler.modulePaths.push("x");
    a.modules.m = { k: 1 };
    expect(defaultConfig().crawler.modulePaths).toEqual([]);
    expect(defaultConfig().modules).toEqual({});
  });

  it("the schema table has one row per key, with snake_case TOML names", () => {
    const paths = CONFIG_FIELDS.map((r) => r.path);
    expect(new Set(paths).size).toBe(paths.length);
    expect(paths).toContain("crawler.task_concurrency");
    expect(paths).toContain("channel_config.redis.claim_min_idle");
    expect(paths).toContain("cache.redis.redis_host");
    for (const row of CONFIG_FIELDS) {
      expect(row.field.key).toMatch(/^[a-z0-9_]+$/);
      expect(row.field.description.length).toBeGreaterThan(0);
    }
  });

  it("derived values", () => {
    const c = defaultConfig();
    expect(effectivePrefetch(c)).toBe(128);
    c.crawler.prefetch = 7;
    expect(effectivePrefetch(c)).toBe(7);
    expect(cacheRedisConnection(c)).toEqual({
      redisHost: "127.0.0.1",
      redisPort: 6379,
      redisDb: 0,
      redisUsername: "",
      redisPassword: "",
      tls: false,
    });
    expect(queueCodecFormat(c)).toBe("bincode");
    expect(queueCodecFormat(parseConfig('[channel_config]\nqueue_codec = "rmp"', "c.toml"))).toBe("msgpack");
  });
});

describe("full file", () => {
  it("parses every field", () => {
    expect(parseConfig(FULL_TOML, "full.toml")).toEqual(FULL_CONFIG);
  });

  it("round-trips through formatConfig", () => {
    const text = formatConfig(FULL_CONFIG);
    expect(parseConfig(text, "formatted.toml")).toEqual(FULL_CONFIG);
    expect(parseConfig(formatConfig(defaultConfig()), "formatted.toml")).toEqual(EXPECTED_DEFAULTS);
  });

  it("module settings are plain objects", () => {
    const c = parseConfig(FULL_TOML, "full.toml");
    expect(Object.getPrototypeOf(c.modules.books)).toBe(Object.prototype);
    expect(JSON.parse(JSON.stringify(c.modules))).toEqual(FULL_CONFIG.modules);
  });

  it("[cache.redis] keys that are missing inherit from [channel_config.redis]", () => {
    const c = parseConfig(
      '[channel_config.redis]\nredis_host = "q"\nredis_password = "pw"\n[cache.redis]\nredis_db = 3\n',
      "c.toml",
    );
    expect(c.cache.redis).toEqual({
      redisHost: "q",
      redisPort: 6379,
      redisDb: 3,
      redisUsername: "",
      redisPassword: "pw",
      tls: false,
    });
    expect(cacheRedisConnection(c).redisDb).toBe(3);
  });

  it("accepts dotted keys and inline tables", () => {
    const c = parseConfig(
      'crawler.task_concurrency = 2\nchannel_config = { redis = { shards = 3 } }\n',
      "c.toml",
    );
    expect(c.crawler.taskConcurrency).toBe(2);
    expect(c.channelConfig.redis.shards).toBe(3);
  });
});

describe("validation errors", () => {
  it("unknown key, with did-you-mean and the line", () => {
    const e = configError(() =>
      parseConfig("[crawler]\ntask_concurrency = 4\ntask_concurency = 8\n", "config.toml"),
    );
    expect(e.message).toBe(
      'config.toml:3: unknown key "crawler.task_concurency" (did you mean "task_concurrency"?)',
    );
    expect(e.issues).toHaveLength(1);
    expect(e.issues[0]).toMatchObject({ file: "config.toml", line: 3, key: "crawler.task_concurency" });
  });

  it("unknown key with camelCase spelling, and a key put in the wrong section", () => {
    const e = configError(() =>
      parseConfig('[crawler]\ntaskConcurrency = 4\n\n[channel_config]\nredis_host = "h"\n', "c.toml"),
    );
    expect(e.message).toBe(
      [
        'c.toml:2: unknown key "crawler.taskConcurrency" (did you mean "task_concurrency"?)',
        'c.toml:5: unknown key "channel_config.redis_host" (did you mean "channel_config.redis.redis_host"?)',
      ].join("\n"),
    );
  });

  it("[rate_limits] takes numbers >= 0 and rejects anything else", () => {
    const c = parseConfig('[rate_limits]\n"shop.example.co.uk" = 0.5\n"module:x" = 3\n', "c.toml");
    expect(c.rateLimits).toEqual({ "shop.example.co.uk": 0.5, "module:x": 3 });
    const e = configError(() => parseConfig('[rate_limits]\n"a.com" = -1\n"b.com" = "fast"\n', "c.toml"));
    expect(e.message).toBe(
      [
        'c.toml:2: rate_limits."a.com" must be a number >= 0, got -1',
        'c.toml:3: rate_limits."b.com" must be a number >= 0, got "fast"',
      ].join("\n"),
    );
    const e2 = configError(() => parseConfig('[download_config]\nrate_limit_key = "ip"\n', "c.toml"));
    expect(e2.message).toBe(
      'c.toml:2: download_config.rate_limit_key must be one of "domain", "host", "module", "proxy", got "ip"',
    );
  });

  it("unknown key without a near miss lists the known keys", () => {
    const e = configError(() => parseConfig("[output]\nzzz = 1\n", "c.toml"));
    expect(e.message).toBe('c.toml:2: unknown key "output.zzz"; known keys in [output]: sink, path, redis_max_len, redis_seen_ttl_secs, postgres_batch_rows, postgres_outage_secs, max_item_bytes, mode');
  });

  it("unknown sections", () => {
    const e = configError(() =>
      parseConfig("[crawlr]\ntask_concurrency = 1\n\n[channel_config.reddis]\nshards = 2\n", "c.toml"),
    );
    expect(e.message).toBe(
      [
        'c.toml:1: unknown section "crawlr" (did you mean "crawler"?)',
        'c.toml:4: unknown section "channel_config.reddis" (did you mean "redis"?)',
      ].join("\n"),
    );
    const e2 = configError(() => parseConfig("[redis]\nredis_host = \"x\"\n", "c.toml"));
    expect(e2.message).toBe('c.toml:1: unknown section "redis" (did you mean "channel_config.redis"?)');
  });

  it("wrong types", () => {
    const e = configError(() =>
      parseConfig(
        [
          "[crawler]",
          'task_concurrency = "64"',
          'obey_robots_txt = "yes"',
          'module_paths = ["a", 1]',
          "progress_interval_secs = true",
          "[download_config]",
          "timeout = nan",
          "max_redirects = 1.5",
        ].join("\n"),
        "config.toml",
      ),
    );
    expect(e.message).toBe(
      [
        'config.toml:2: crawler.task_concurrency must be an integer >= 1, got "64"',
        'config.toml:3: crawler.obey_robots_txt must be a boolean (true or false), got "yes"',
        'config.toml:4: crawler.module_paths must be an array of strings, got ["a", 1]',
        "config.toml:5: crawler.progress_interval_secs must be a number > 0, got true",
        "config.toml:7: download_config.timeout must be a number > 0, got nan",
        "config.toml:8: download_config.max_redirects must be an integer >= 0, got 1.5",
      ].join("\n"),
    );
  });

  it("a section given as a scalar", () => {
    const e = configError(() => parseConfig("crawler = 5\n", "c.toml"));
    expect(e.message).toBe("c.toml:1: crawler must be a table (a [crawler] section), got 5");
  });

  it("negative concurrency and other impossible values", () => {
    const e = configError(() =>
      parseConfig(
        '\n\n[crawler]\ntask_concurrency = -4\n[channel_config.redis]\nredis_port = 70000\n[download_config]\ntimeout = 0\n',
        "config.toml",
      ),
    );
    expect(e.message).toBe(
      [
        "config.toml:4: crawler.task_concurrency must be an integer >= 1, got -4",
        "config.toml:6: channel_config.redis.redis_port must be an integer between 1 and 65535, got 70000",
        "config.toml:8: download_config.timeout must be a number > 0, got 0",
      ].join("\n"),
    );
  });

  it("name must be a valid namespace", () => {
    const e = configError(() => parseConfig('name = "my crawler"\n', "c.toml"));
    expect(e.message).toBe(
      'c.toml:1: name must be a non-empty string of letters, digits, "_", "." and "-", got "my crawler"',
    );
    expect(() => parseConfig('name = ""\n', "c.toml")).toThrow(ConfigError);
  });

  it("unknown codec", () => {
    const e = configError(() =>
      parseConfig('# codec\n\n\n\n\n\n[channel_config]\nqueue_codec = "protobuf"\n', "config.toml"),
    );
    expect(e.message).toBe(
      'config.toml:8: channel_config.queue_codec must be one of "bincode", "json", "msgpack", "rmp", got "protobuf"',
    );
  });

  it("queue_codec is matched case-insensitively, as mocra lowercases it", () => {
    const codecOf = (v: string) => parseConfig(`[channel_config]\nqueue_codec = "${v}"\n`, "c.toml").channelConfig.queueCodec;
    expect(codecOf("Msgpack")).toBe("msgpack");
    expect(codecOf("RMP")).toBe("rmp");
    expect(codecOf("BINCODE")).toBe("bincode");
    expect(codecOf("Json")).toBe("json");
    expect(queueCodecFormat(parseConfig('[channel_config]\nqueue_codec = "RMP"', "c.toml"))).toBe("msgpack");
  });

  it("unknown output sink", () => {
    const e = configError(() => parseConfig('[output]\nsink = "kafka"\n', "c.toml"));
    expect(e.message).toBe('c.toml:2: output.sink must be one of "jsonl", "stdout", "redis", "postgres", got "kafka"');
  });

  it("modules entries must be tables", () => {
    const e = configError(() => parseConfig("[modules]\nbooks = 3\n[modules.ok]\na = 1\n", "c.toml"));
    expect(e.message).toBe("c.toml:2: modules.books must be a table (a [modules.books] section), got 3");
    const e2 = configError(() => parseConfig("modules = [1]\n", "c.toml"));
    expect(e2.message).toBe("c.toml:1: modules must be a table of tables, got [1]");
  });

  it("retry_max_delay_ms must not be below retry_base_delay_ms", () => {
    const e = configError(() => parseConfig("[crawler]\nretry_base_delay_ms = 120000\n", "c.toml"));
    expect(e.message).toBe(
      "c.toml:2: crawler.retry_max_delay_ms must be >= crawler.retry_base_delay_ms (120000), got 60000",
    );
  });

  it("locates keys inside inline tables at the enclosing key's line", () => {
    const e = configError(() => parseConfig("\nchannel_config = { redis = { shards = 0 } }\n", "c.toml"));
    expect(e.message).toBe("c.toml:2: channel_config.redis.shards must be an integer >= 1, got 0");
  });

  it("is not fooled by multi-line strings", () => {
    const text = ['[crawler]', 'user_agent = """', "task_concurrency = 1", '"""', "prefetch = -1"].join("\n");
    const e = configError(() => parseConfig(text, "c.toml"));
    expect(e.message).toBe("c.toml:5: crawler.prefetch must be an integer >= 0, got -1");
  });

  it("TOML syntax errors carry line and column", () => {
    const e = configError(() => parseConfig('[crawler]\ntask_concurrency = 4\nuser_agent = "unterminated\n', "config.toml"));
    expect(e.issues).toHaveLength(1);
    expect(e.issues[0]).toMatchObject({ file: "config.toml", line: 3 });
    expect(e.issues[0]!.column).toBeTypeOf("number");
    expect(e.message.split("\n")[0]).toMatch(/^config\.toml:3:\d+: invalid TOML: \S.*$/);
    expect(e.message).toContain('user_agent = "unterminated');
  });

  it("duplicate keys are syntax errors with a line", () => {
    const e = configError(() => parseConfig("[crawler]\nprefetch = 1\nprefetch = 2\n", "c.toml"));
    expect(e.issues[0]!.line).toBe(3);
    expect(e.message.split("\n")[0]).toMatch(/^c\.toml:3:\d+: invalid TOML: /);
  });

  it("reports every error, one per line, in file order", () => {
    const text = [
      'name = "bad name"', // 1
      "[crawler]", // 2
      "task_concurrency = 0", // 3
      "prefetchh = 2", // 4
      "[channel_config]", // 5
      'queue_codec = "protobuf"', // 6
      "[channel_config.redis]", // 7
      "redis_port = 0", // 8
      "[nope]", // 9
      "x = 1", // 10
    ].join("\n");
    const e = configError(() => parseConfig(text, "config.toml"));
    const lines = e.message.split("\n");
    expect(lines).toHaveLength(6);
    expect(e.issues.map((i) => i.line)).toEqual([1, 3, 4, 6, 8, 9]);
    expect(lines[0]).toMatch(/^config\.toml:1: name must be/);
    expect(lines[1]).toBe("config.toml:3: crawler.task_concurrency must be an integer >= 1, got 0");
    expect(lines[2]).toBe('config.toml:4: unknown key "crawler.prefetchh" (did you mean "prefetch"?)');
    expect(lines[3]).toMatch(/^config\.toml:6: channel_config\.queue_codec must be one of/);
    expect(lines[4]).toBe(
      "config.toml:8: channel_config.redis.redis_port must be an integer between 1 and 65535, got 0",
    );
    expect(lines[5]).toBe(
      'config.toml:9: unknown section "nope"; known sections: crawler, download_config, channel_config, cache, output, middleware, scheduler, db, state, api, logger, browser, modules, rate_limits',
    );
  });
});

describe("loadConfig", () => {
  let dir: string;
  const cwd = process.cwd();

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "mocra-config-"));
  });
  afterAll(async () => {
    process.chdir(cwd);
    await rm(dir, { recursive: true, force: true });
  });

  it("reads and validates a file", async () => {
    const file = join(dir, "a.toml");
    await writeFile(file, FULL_TOML);
    expect(await loadConfig(file)).toEqual(FULL_CONFIG);
  });

  it("names the file in errors", async () => {
    const file = join(dir, "bad.toml");
    await writeFile(file, "[crawler]\ntask_concurrency = -1\n");
    await expect(loadConfig(file)).rejects.toThrow(
      `${file}:2: crawler.task_concurrency must be an integer >= 1, got -1`,
    );
  });

  it("a missing explicit path is an error", async () => {
    const file = join(dir, "does-not-exist.toml");
    const err = await loadConfig(file).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).message).toBe(`${file}: config file not found`);
  });

  it("without a path: reads config.toml in the cwd (the repo's, under vitest)", async () => {
    expect(process.cwd()).toBe(REPO);
    expect(await loadConfig()).toEqual(EXPECTED_DEFAULTS);
  });

  // process.chdir is unavailable in worker threads (vitest's "threads" pool).
  it.skipIf(!isMainThread)("without a path: defaults when config.toml is missing", async () => {
    const empty = join(dir, "empty");
    const withFile = join(dir, "with");
    await mkdir(empty);
    await mkdir(withFile);
    await writeFile(join(withFile, "config.toml"), "[crawler]\ntask_concurrency = 3\n");
    try {
      process.chdir(empty);
      expect(await loadConfig()).toEqual(EXPECTED_DEFAULTS);
      process.chdir(withFile);
      expect((await loadConfig()).crawler.taskConcurrency).toBe(3);
    } finally {
      process.chdir(cwd);
    }
  });

  it("the repo's config.toml parses and equals the defaults", async () => {
    const file = join(REPO, "config.toml");
    const text = await readFile(file, "utf8");
    expect(parseConfig(text, file)).toEqual(EXPECTED_DEFAULTS);
    expect(await loadConfig(file)).toEqual(EXPECTED_DEFAULTS);
    // It documents every key.
    for (const row of CONFIG_FIELDS) {
      if (row.field.type === "table" || row.field.type === "number-map") continue;
      expect(text).toMatch(new RegExp(`^(# )?${row.field.key} = `, "m"));
    }
    expect(text).toMatch(/^\[channel_config\.redis\]$/m);
    expect(text).toMatch(/^# \[cache\.redis\]$/m);
    expect(text).toMatch(/^\[rate_limits\]$/m);
  });
});
