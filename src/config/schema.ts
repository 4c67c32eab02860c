/**
 * The configuration schema: the typed `Config` the engine reads (camelCase fields) and a
 * declarative table of every TOML section and key (mocra's snake_case names) with its type,
 * default, constraint and a one-line description. The loader (`load.ts`) validates a parsed
 * TOML document against this table; `format.ts` renders a commented `config.toml` from it.
 */

// ---------------------------------------------------------------------------------------
// The typed configuration
// ---------------------------------------------------------------------------------------

/** Any value a TOML document can hold (integers beyond 2^53 are rejected by the parser). */
export type SettingValue = string | number | boolean | Date | SettingValue[] | SettingsTable;

/** A TOML table: the free-form settings handed to a module. */
export interface SettingsTable {
  [key: string]: SettingValue;
}

/** Settings of one module: the contents of `[modules.<name>]`. */
export type ModuleSettings = SettingsTable;

/** `channel_config.queue_codec`. "rmp" is mocra's name for MessagePack (same as "msgpack"). */
export type QueueCodec = "json" | "msgpack" | "rmp" | "bincode";

/** `output.sink`. */
export type OutputSink = "jsonl" | "stdout" | "redis" | "postgres";

/** `download_config.rate_limit_key`: what a rate limit, a suspension and a circuit apply to. */
export type RateLimitKeyMode = "domain" | "host" | "module" | "proxy";

/** `[crawler]` */
export interface CrawlerConfig {
  taskConcurrency: number;
  prefetch: number;
  requestMaxRetries: number;
  retryBaseDelayMs: number;
  retryMaxDelayMs: number;
  userAgent: string;
  dedupTtlSecs: number;
  dedupLayout: "buckets" | "keys";
  modulePaths: string[];
  proxyPath: string;
  generateBacklog: number;
  shutdownTimeoutSecs: number;
  parseTimeoutSecs: number;
  maxFollowsPerPage: number;
  obeyRobotsTxt: boolean;
  progressIntervalSecs: number;
  // crawl correctness (canonical URLs, item dedup by rel=canonical)
  keepQueryOrder: boolean;
  stripParams: string[];
  dedupItemsByCanonical: boolean;
  // crawl bounds (per run and module; a module's maxDepth / maxRequests / maxItems wins)
  maxDepth: number;
  maxRequests: number;
  maxItems: number;
  /** crawl traps: follow-ups of one URL shape after this many pages of it in a row found nothing new (0 = off) */
  maxBarrenHops: number;
}

/** `[download_config]` */
export interface DownloadConfig {
  timeout: number;
  rateLimit: number;
  enableRateLimit: boolean;
  domainConcurrency: number;
  maxResponseSize: number;
  maxRedirects: number;
  enableCache: boolean;
  cacheTtl: number;
  poolSize: number;
  maxWaitMs: number;
  rateLimitKey: RateLimitKeyMode;
  circuitFailures: number;
  circuitOpenSecs: number;
  proxyRateLimit: number;
  proxyMaxFailures: number;
  proxyCooldownSecs: number;
  /** hosts (names or IP addresses) that may resolve to a private network address (docs/security.md) */
  allowPrivateHosts: string[];
  /** crawl private, loopback and link-local addresses too (off: only hosts the crawl names) */
  allowPrivateNetworks: boolean;
}

/** Connection fields shared by `[channel_config.redis]` and `[cache.redis]`. */
export interface RedisConnectionConfig {
  redisHost: string;
  redisPort: number;
  redisDb: number;
  redisUsername: string;
  redisPassword: string;
  /** TLS to Redis (ioredis `tls`), as mocra's `tls`. */
  tls: boolean;
}

/** `[channel_config.redis]` */
export interface ChannelRedisConfig extends RedisConnectionConfig {
  shards: number;
  listenerCount: number;
  claimMinIdle: number;
  claimCount: number;
  claimInterval: number;
  connectTimeoutMs: number;
  reconnectBudgetSecs: number;
}

/** `[channel_config.blob_storage]` */
export interface BlobStorageConfig {
  path: string;
}

/** `[channel_config]` */
export interface ChannelConfig {
  queueCodec: QueueCodec;
  compressionThreshold: number;
  minidTime: number;
  capacity: number;
  batchConcurrency: number;
  /** mocra 0.4's nack policy: re-deliveries before a dead letter on JetStream (0 = request_max_retries + 2) */
  nackMaxRetries: number;
  /** the least delay of a retry republished on JetStream (mocra sleeps this long before republishing) */
  nackBackoffMs: number;
  redis: ChannelRedisConfig;
  /** `[channel_config.nats]`; null when absent. Present = the queues are on JetStream (mocra 0.4.1). */
  nats: ChannelNatsConfig | null;
  blobStorage: BlobStorageConfig;
}

/** `[channel_config.nats]`: mocra 0.4.1's NatsConfig (url, username, password, token) and ours. */
export interface ChannelNatsConfig {
  url: string;
  username: string;
  password: string;
  token: string;
  ackWaitMs: number;
  connectTimeoutMs: number;
  reconnectBudgetSecs: number;
}

/** `[cache]` */
export interface CacheConfig {
  ttl: number;
  compressionThreshold: number;
  l1MaxEntries: number;
  /** `[cache.redis]`; null when the section is absent (= use `channelConfig.redis`). */
  redis: RedisConnectionConfig | null;
}

/** `[output]` */
export interface OutputConfig {
  sink: OutputSink;
  path: string;
  redisMaxLen: number;
  redisSeenTtlSecs: number;
  postgresBatchRows: number;
  postgresOutageSecs: number;
  /** the most JSON one item may take; a page with a bigger item is dead-lettered */
  maxItemBytes: number;
  /** run-standalone: a fresh run replaces each module's JSONL file, or appends to it */
  mode: "replace" | "append";
}

/** `[state]`: where run-standalone keeps its frontier so a stopped or crashed run can be resumed. */
export interface StateConfig {
  dir: string;
  fsync: boolean;
  segmentMb: number;
}

/** `[db]`: mocra's database section; the PostgreSQL items store (`output.sink = "postgres"`) uses it. */
export interface DbConfig {
  url: string;
  databaseSchema: string;
  poolSize: number;
  tls: boolean;
}

// --- middleware and scheduler (issue 13) ---
/** `[middleware]`: the built-in middleware registered for every module, and files of your own. */
export interface MiddlewareConfig {
  userAgents: string[];
  defaultHeaders: string[];
  requiredFields: string[];
  itemSchema: string;
  paths: string[];
}

/** `[scheduler]`: cron schedules, submitted by the elected leader (mocra's keys, plus the lease). */
export interface SchedulerConfig {
  misfireToleranceSecs: number;
  concurrency: number;
  leaderLeaseSecs: number;
}
// --- end middleware and scheduler ---

/** `[api]` (mocra's): the observability and control HTTP API and the dashboard. */
export interface ApiConfig {
  port: number;
  host: string;
  apiKey: string;
  rateLimit: number;
  /** host names (besides the listening address, IP literals and localhost) a request's Host may carry */
  allowedHosts: string[];
  /** largest request body accepted, bytes (413 above) */
  maxBodyBytes: number;
}

/** `logger.level` */
export type LogLevel = "debug" | "info" | "warn" | "error";

/** `[logger]` (mocra's section; `enabled`, `level` and `format` have an effect here). */
export interface LoggerConfig {
  enabled: boolean;
  level: LogLevel;
  format: "text" | "json";
}

/** `[browser]`: headless Chromium for pages that need one (render = "browser" | "auto"). */
export interface BrowserConfig {
  executable: string;
  concurrency: number;
  recyclePages: number;
  blockResources: string[];
  launchTimeoutSecs: number;
}

/** The whole configuration. Every field has a default, so an empty file is valid. */
export interface Config {
  name: string;
  crawler: CrawlerConfig;
  downloadConfig: DownloadConfig;
  channelConfig: ChannelConfig;
  cache: CacheConfig;
  output: OutputConfig;
  middleware: MiddlewareConfig;
  scheduler: SchedulerConfig;
  db: DbConfig;
  state: StateConfig;
  api: ApiConfig;
  logger: LoggerConfig;
  browser: BrowserConfig;
  /** `[modules.<name>]` tables, keyed by module name. */
  modules: Record<string, ModuleSettings>;
  /** `[rate_limits]`: requests per second per rate-limit key (e.g. a domain), overriding the defaults. */
  rateLimits: Record<string, number>;
}

// ---------------------------------------------------------------------------------------
// The declarative table
// ---------------------------------------------------------------------------------------

export type FieldType = "string" | "integer" | "number" | "boolean" | "string[]" | "enum" | "table" | "number-map";

interface FieldBase<V> {
  /** The TOML key (snake_case, as in mocra). */
  readonly key: string;
  /** One-line description. */
  readonly description: string;
  readonly default: V;
}

export interface StringField extends FieldBase<string> {
  readonly type: "string";
  /** The whole value must match. */
  readonly pattern?: RegExp;
  /** Human wording of the pattern for error messages. */
  readonly patternDescription?: string;
}

export interface IntegerField extends FieldBase<number> {
  readonly type: "integer";
  readonly min?: number;
  readonly max?: number;
}

export interface NumberField extends FieldBase<number> {
  readonly type: "number";
  readonly min?: number;
  /** Strict lower bound (value must be > exclusiveMin). */
  readonly exclusiveMin?: number;
  readonly max?: number;
}

export interface BooleanField extends FieldBase<boolean> {
  readonly type: "boolean";
}

export interface StringArrayField extends FieldBase<readonly string[]> {
  readonly type: "string[]";
}

export interface EnumField<V extends string = string> extends FieldBase<V> {
  readonly type: "enum";
  /** Accepted values. */
  readonly values: readonly V[];
  /** Values that are recognised but rejected, with the reason ("is not implemented yet; ..."). */
  readonly unsupported?: Readonly<Record<string, string>>;
  /** Match values ignoring case and surrounding blanks (mocra lowercases `queue_codec`). */
  readonly caseInsensitive?: boolean;
}

/** A free-form table whose entries must themselves be tables (`[modules.<name>]`). */
export interface TableField extends FieldBase<Readonly<Record<string, SettingsTable>>> {
  readonly type: "table";
}

/** A table of free-form keys whose values are numbers (`[rate_limits]`). */
export interface NumberMapField extends FieldBase<Readonly<Record<string, number>>> {
  readonly type: "number-map";
  /** Smallest value accepted for an entry. */
  readonly min?: number;
}

export type FieldSpec =
  | StringField
  | IntegerField
  | NumberField
  | BooleanField
  | StringArrayField
  | EnumField
  | TableField
  | NumberMapField;

/** The spec kinds that can describe a TS property of type V. */
type FieldSpecFor<V> = [V] extends [boolean]
  ? BooleanField
  : [V] extends [number]
    ? IntegerField | NumberField
    : [V] extends [string]
      ? string extends V
        ? StringField
        : EnumField<V>
      : [V] extends [readonly string[]]
        ? StringArrayField
        : [V] extends [Readonly<Record<string, number>>]
          ? NumberMapField
          : TableField;

/** One spec per property of T (compile-time check that table and types agree). */
type FieldTable<T> = { readonly [K in keyof T]-?: FieldSpecFor<T[K]> };

export interface SectionSpec {
  /** The TOML key of this section within its parent ("" for the root). */
  readonly key: string;
  /** The camelCase property of this section within its parent ("" for the root). */
  readonly prop: string;
  /** The dotted TOML path ("" for the root). */
  readonly path: string;
  readonly description: string;
  /** Keyed by camelCase property. */
  readonly fields: Readonly<Record<string, FieldSpec>>;
  readonly sections: readonly SectionSpec[];
  /**
   * Set for a section that is null in `Config` when absent from the file. Keys missing from a
   * present section take their value from the section at this dotted TOML path.
   */
  readonly inheritsFrom?: string;
  /** Set for a section that is null in `Config` when absent from the file (without inheriting). */
  readonly optional?: boolean;
}

const NAME_PATTERN = /^[A-Za-z0-9_.-]+$/;

const rootFields: FieldTable<Pick<Config, "name" | "modules" | "rateLimits">> = {
  name: {
    key: "name",
    type: "string",
    default: "mocra",
    pattern: NAME_PATTERN,
    patternDescription: 'a non-empty string of letters, digits, "_", "." and "-"',
    description: "Instance name; every Redis key lives under this namespace.",
  },
  modules: {
    key: "modules",
    type: "table",
    default: {},
    description: "[modules.<name>] tables: free-form settings passed to the module of that name.",
  },
  rateLimits: {
    key: "rate_limits",
    type: "number-map",
    default: {},
    min: 0,
    description:
      'Requests per second per rate-limit key (a domain by default, e.g. "example.com" = 2.5; or "module:<name>", "proxy:<host:port>"), over rate_limit and module settings; 0 = unlimited.',
  },
};

const crawlerFields: FieldTable<CrawlerConfig> = {
  taskConcurrency: {
    key: "task_concurrency",
    type: "integer",
    default: 64,
    min: 1,
    description: "Concurrent downloads per worker.",
  },
  prefetch: {
    key: "prefetch",
    type: "integer",
    default: 0,
    min: 0,
    description: "Messages read ahead from the queue; 0 = 2 x task_concurrency.",
  },
  requestMaxRetries: {
    key: "request_max_retries",
    type: "integer",
    default: 3,
    min: 0,
    description: "Deliveries of a failing message before it goes to the dead-letter stream.",
  },
  retryBaseDelayMs: {
    key: "retry_base_delay_ms",
    type: "integer",
    default: 1000,
    min: 0,
    description: "Base of the exponential retry back-off, in ms.",
  },
  retryMaxDelayMs: {
    key: "retry_max_delay_ms",
    type: "integer",
    default: 60000,
    min: 1,
    description: "Upper bound of the retry delay in ms (must be >= retry_base_delay_ms).",
  },
  userAgent: {
    key: "user_agent",
    type: "string",
    default: "mocra-ts/0.1 (+https://github.com/mocra-ts)",
    description: "User-Agent header sent when a request sets none.",
  },
  dedupTtlSecs: {
    key: "dedup_ttl_secs",
    type: "integer",
    default: 86400,
    min: 0,
    description: "Seconds a request fingerprint is remembered for de-duplication in Redis; 0 = no Redis dedup (as in mocra; the in-memory queue dedups for the whole run).",
  },
  dedupLayout: {
    key: "dedup_layout",
    type: "enum",
    default: "buckets",
    values: ["buckets", "keys"],
    description:
      'How Redis remembers seen request fingerprints: "buckets" packs them into 262 144 small hashes <name>:cache:seenh18:<5 hex> (exact, ~23 B per URL at 10^7; mocra-ts only), "keys" is mocra\'s <name>:cache:dedup:<fingerprint> key per URL (~100 B per URL; use it when Rust mocra workers share the queue).',
  },
  modulePaths: {
    key: "module_paths",
    type: "string[]",
    default: [],
    description: "Extra directories or files to load modules from (besides modules/).",
  },
  proxyPath: {
    key: "proxy_path",
    type: "string",
    default: "",
    description: "Path of a proxy list file; empty = no proxies.",
  },
  generateBacklog: {
    key: "generate_backlog",
    type: "integer",
    default: 1000,
    min: 1,
    description: "Requests queued before a module's start() is paused.",
  },
  shutdownTimeoutSecs: {
    key: "shutdown_timeout_secs",
    type: "integer",
    default: 30,
    min: 0,
    description: "Seconds to drain in-flight work on shutdown before giving up.",
  },
  parseTimeoutSecs: {
    key: "parse_timeout_secs",
    type: "number",
    default: 60,
    min: 0.001,
    description:
      "Deadline of one call of module code (start, parse, middleware); a module's parseTimeoutSecs wins. Past it the delivery fails with \"parse timed out after N s\"; a call that blocks the process (a CPU loop) that long ends the process (see docs/module-faults.md).",
  },
  maxFollowsPerPage: {
    key: "max_follows_per_page",
    type: "integer",
    default: 10000,
    min: 1,
    description: "Follow-ups one page may make (follow, enqueueLinks); the rest are counted as links dropped. A module's maxFollowsPerPage wins.",
  },
  obeyRobotsTxt: {
    key: "obey_robots_txt",
    type: "boolean",
    default: true,
    description: "Fetch and honour robots.txt of each host.",
  },
  progressIntervalSecs: {
    key: "progress_interval_secs",
    type: "number",
    default: 5,
    exclusiveMin: 0,
    description: "Seconds between progress reports.",
  },
  keepQueryOrder: {
    key: "keep_query_order",
    type: "boolean",
    default: false,
    description: "Keep query parameters in link order instead of sorting them by name when a URL is canonicalised.",
  },
  stripParams: {
    key: "strip_params",
    type: "string[]",
    default: ["utm_*", "fbclid", "gclid", "msclkid"],
    description: "Query parameters (names or globs) removed from every request URL.",
  },
  dedupItemsByCanonical: {
    key: "dedup_items_by_canonical",
    type: "boolean",
    default: false,
    description: "Store the items of pages sharing one <link rel=canonical> once.",
  },
  maxDepth: {
    key: "max_depth",
    type: "integer",
    default: 0,
    min: 0,
    description: "Link hops followed from a start request (start = depth 0); 0 = unlimited. A module's maxDepth wins.",
  },
  maxRequests: {
    key: "max_requests",
    type: "integer",
    default: 0,
    min: 0,
    description: "Distinct requests downloaded per run and module, shared by all workers; 0 = unlimited. A module's maxRequests wins.",
  },
  maxItems: {
    key: "max_items",
    type: "integer",
    default: 0,
    min: 0,
    description: "Items stored per run and module after which the run stops enqueueing and downloading; 0 = unlimited. A module's maxItems wins.",
  },
  maxBarrenHops: {
    key: "max_barren_hops",
    type: "integer",
    default: 20,
    min: 0,
    description: "Crawl traps: a chain of pages of one URL shape (digits aside) that stays this many pages in a row without new items or new links of another shape is not followed further; 0 = off. A module's maxBarrenHops wins.",
  },
};

const downloadFields: FieldTable<DownloadConfig> = {
  timeout: {
    key: "timeout",
    type: "number",
    default: 30,
    exclusiveMin: 0,
    description: "Request timeout in seconds.",
  },
  rateLimit: {
    key: "rate_limit",
    type: "number",
    default: 0,
    min: 0,
    description: "Requests per second per domain; 0 = unlimited.",
  },
  enableRateLimit: {
    key: "enable_rate_limit",
    type: "boolean",
    default: true,
    description: "Whether rate limiting is applied at all.",
  },
  domainConcurrency: {
    key: "domain_concurrency",
    type: "integer",
    default: 8,
    min: 0,
    description: "Concurrent requests per domain across all workers (Scrapy's default is 8); 0 = no cap.",
  },
  maxResponseSize: {
    key: "max_response_size",
    type: "integer",
    default: 10485760,
    min: 1,
    description: "Largest response body accepted, in bytes.",
  },
  maxRedirects: {
    key: "max_redirects",
    type: "integer",
    default: 10,
    min: 0,
    description: "Redirects followed per request; 0 = none.",
  },
  enableCache: {
    key: "enable_cache",
    type: "boolean",
    default: false,
    description: "Cache responses (keyed by request fingerprint).",
  },
  cacheTtl: {
    key: "cache_ttl",
    type: "integer",
    default: 60,
    min: 0,
    description: "Seconds a cached response stays valid.",
  },
  poolSize: {
    key: "pool_size",
    type: "integer",
    default: 200,
    min: 1,
    description: "HTTP connections per origin (Node; Deno's fetch keeps its own pool).",
  },
  allowPrivateHosts: {
    key: "allow_private_hosts",
    type: "string[]",
    default: [],
    description:
      "Hosts that may be crawled although they resolve to a loopback, private, link-local or other non-public address (start-URL hosts and modules' allowed_domains are allowed already). See docs/security.md.",
  },
  allowPrivateNetworks: {
    key: "allow_private_networks",
    type: "boolean",
    default: false,
    description: "Crawl any loopback, private, link-local, CGNAT, unique-local address (off: refused unless the crawl names the host).",
  },
  maxWaitMs: {
    key: "max_wait_ms",
    type: "integer",
    default: 5000,
    min: 0,
    description: "Longest wait in ms for a rate-limit or concurrency slot.",
  },
  rateLimitKey: {
    key: "rate_limit_key",
    type: "enum",
    default: "domain",
    values: ["domain", "host", "module", "proxy"],
    description:
      'What rate limits, suspensions and circuits apply to: "domain" (registrable domain), "host", "module" or "proxy".',
  },
  circuitFailures: {
    key: "circuit_failures",
    type: "integer",
    default: 5,
    min: 1,
    description: "Consecutive connection failures or timeouts on one key that open its circuit.",
  },
  circuitOpenSecs: {
    key: "circuit_open_secs",
    type: "number",
    default: 30,
    exclusiveMin: 0,
    description: "Seconds an open circuit holds back the requests of its key.",
  },
  proxyRateLimit: {
    key: "proxy_rate_limit",
    type: "number",
    default: 0,
    min: 0,
    description: "Requests per second through each proxy (a proxy's own rate_limit wins); 0 = unlimited.",
  },
  proxyMaxFailures: {
    key: "proxy_max_failures",
    type: "integer",
    default: 3,
    min: 1,
    description: "Consecutive failures that take a proxy out of rotation.",
  },
  proxyCooldownSecs: {
    key: "proxy_cooldown_secs",
    type: "number",
    default: 60,
    exclusiveMin: 0,
    description: "Seconds an evicted proxy stays out of rotation before it is tried again.",
  },
};

const channelFields: FieldTable<Omit<ChannelConfig, "redis" | "nats" | "blobStorage">> = {
  queueCodec: {
    key: "queue_codec",
    type: "enum",
    default: "bincode",
    values: ["bincode", "json", "msgpack", "rmp"],
    caseInsensitive: true,
    description:
      'Queue message encoding, as mocra (any case): "bincode" (mocra\'s default), "json", "msgpack" or "rmp" (= msgpack). Every worker sharing a Redis must use the same.',
  },
  compressionThreshold: {
    key: "compression_threshold",
    type: "integer",
    default: 1024,
    min: 0,
    description: "Payloads larger than this many bytes are compressed.",
  },
  minidTime: {
    key: "minid_time",
    type: "integer",
    default: 0,
    min: 0,
    description: "Hours consumed (acked) stream entries are kept before trimming; 0 = trim them as soon as consumed. Entries pending or not yet delivered are never trimmed.",
  },
  capacity: {
    key: "capacity",
    type: "integer",
    default: 10000,
    min: 1,
    description: "Accepted for mocra config compatibility; unused (mocra-ts queues are bounded by prefetch credit and generate_backlog instead).",
  },
  batchConcurrency: {
    key: "batch_concurrency",
    type: "integer",
    default: 500,
    min: 1,
    description: "Accepted for mocra config compatibility; unused (publishes are pipelined in chunks of 1000, acks in batches of 50).",
  },
  nackMaxRetries: {
    key: "nack_max_retries",
    type: "integer",
    default: 0,
    min: 0,
    description: "JetStream ([channel_config.nats]): deliveries left un-acked (a worker died or stalled) before a message is dead-lettered; 0 = request_max_retries + 2 (as on Redis). Module retries follow request_max_retries.",
  },
  nackBackoffMs: {
    key: "nack_backoff_ms",
    type: "integer",
    default: 0,
    min: 0,
    description: "JetStream ([channel_config.nats]): the least delay in ms of a retry (mocra waits this long before republishing).",
  },
};

const channelNatsFields: FieldTable<ChannelNatsConfig> = {
  url: {
    key: "url",
    type: "string",
    default: "nats://127.0.0.1:4222",
    pattern: /^(nats|tls):\/\/[^\s,]+(,\s*(nats|tls):\/\/[^\s,]+)*$/,
    patternDescription: 'a NATS URL such as "nats://127.0.0.1:4222" (comma-separated for several servers)',
    description: "NATS server(s) with JetStream, as mocra: comma-separated for several.",
  },
  username: {
    key: "username",
    type: "string",
    default: "",
    description: "NATS user (with password); empty = none.",
  },
  password: {
    key: "password",
    type: "string",
    default: "",
    description: "NATS password (with username).",
  },
  token: {
    key: "token",
    type: "string",
    default: "",
    description: "NATS token (used when no username is set); empty = none.",
  },
  ackWaitMs: {
    key: "ack_wait_ms",
    type: "integer",
    default: 30000,
    min: 1000,
    description: "Ack wait of the consumers this worker creates (mocra's default, 30 s): an un-acked delivery goes to another worker after it; long pages are kept alive (in progress) every half of it. An existing consumer keeps its own.",
  },
  connectTimeoutMs: {
    key: "connect_timeout_ms",
    type: "integer",
    default: 5000,
    min: 1,
    description: "NATS connect timeout in ms.",
  },
  reconnectBudgetSecs: {
    key: "reconnect_budget_secs",
    type: "integer",
    default: 60,
    min: 1,
    description: "Seconds to keep reconnecting to a lost NATS (and retrying publishes) before stopping with an error.",
  },
};

const redisConnectionFields: FieldTable<RedisConnectionConfig> = {
  redisHost: {
    key: "redis_host",
    type: "string",
    default: "127.0.0.1",
    description: "Redis host.",
  },
  redisPort: {
    key: "redis_port",
    type: "integer",
    default: 6379,
    min: 1,
    max: 65535,
    description: "Redis port.",
  },
  redisDb: {
    key: "redis_db",
    type: "integer",
    default: 0,
    min: 0,
    description: "Redis database index.",
  },
  redisUsername: {
    key: "redis_username",
    type: "string",
    default: "",
    description: "Redis ACL user name; empty = default user.",
  },
  redisPassword: {
    key: "redis_password",
    type: "string",
    default: "",
    description: "Redis password; empty = none.",
  },
  tls: {
    key: "tls",
    type: "boolean",
    default: false,
    description: "Connect to Redis over TLS (system CAs, server name = redis_host).",
  },
};

const channelRedisFields: FieldTable<ChannelRedisConfig> = {
  ...redisConnectionFields,
  shards: {
    key: "shards",
    type: "integer",
    default: 8,
    min: 1,
    description: "Streams per topic (messages are spread over the shards).",
  },
  listenerCount: {
    key: "listener_count",
    type: "integer",
    default: 1,
    min: 1,
    description: "Accepted for mocra config compatibility; unused (a worker reads each topic with one blocking reader and strict priorities).",
  },
  claimMinIdle: {
    key: "claim_min_idle",
    type: "integer",
    default: 60000,
    min: 1,
    description: "Ms a delivered message may stay unacknowledged before another worker claims it.",
  },
  claimCount: {
    key: "claim_count",
    type: "integer",
    default: 100,
    min: 1,
    description: "Messages claimed per XAUTOCLAIM call.",
  },
  claimInterval: {
    key: "claim_interval",
    type: "integer",
    default: 30000,
    min: 1,
    description: "Ms between claim sweeps.",
  },
  connectTimeoutMs: {
    key: "connect_timeout_ms",
    type: "integer",
    default: 5000,
    min: 1,
    description: "Redis connect timeout in ms.",
  },
  reconnectBudgetSecs: {
    key: "reconnect_budget_secs",
    type: "integer",
    default: 60,
    min: 1,
    description: "Seconds to keep reconnecting to a lost Redis before stopping with an error.",
  },
};

const blobStorageFields: FieldTable<BlobStorageConfig> = {
  path: {
    key: "path",
    type: "string",
    default: "",
    description: "Directory for large payloads kept outside Redis; empty = off.",
  },
};

const cacheFields: FieldTable<Omit<CacheConfig, "redis">> = {
  ttl: {
    key: "ttl",
    type: "integer",
    default: 300,
    min: 0,
    description: "Default entry lifetime in seconds.",
  },
  compressionThreshold: {
    key: "compression_threshold",
    type: "integer",
    default: 1024,
    min: 0,
    description: "Values larger than this many bytes are compressed.",
  },
  l1MaxEntries: {
    key: "l1_max_entries",
    type: "integer",
    default: 10000,
    min: 1,
    description: "Entries held in the in-process (L1) cache.",
  },
};

const outputFields: FieldTable<OutputConfig> = {
  sink: {
    key: "sink",
    type: "enum",
    default: "jsonl",
    values: ["jsonl", "stdout", "redis", "postgres"],
    description: 'Where items go: "jsonl" files, "stdout", a "redis" stream, or "postgres" tables (connection from [db]).',
  },
  path: {
    key: "path",
    type: "string",
    default: "output",
    description: "Directory of the jsonl sink; it writes <path>/<module>.jsonl.",
  },
  redisMaxLen: {
    key: "redis_max_len",
    type: "integer",
    default: 0,
    min: 0,
    description: "Redis sink: MAXLEN ~ of each <name>:items:<module> stream (oldest items dropped, exported or not); 0 = keep until exported.",
  },
  redisSeenTtlSecs: {
    key: "redis_seen_ttl_secs",
    type: "integer",
    default: 0,
    min: 0,
    description: "Redis sink: TTL of each <name>:items:<module>:seen set after its last write (a page redelivered later is stored again); 0 = no TTL.",
  },
  postgresBatchRows: {
    key: "postgres_batch_rows",
    type: "integer",
    default: 500,
    min: 1,
    description: "PostgreSQL sink: most rows per multi-row INSERT.",
  },
  postgresOutageSecs: {
    key: "postgres_outage_secs",
    type: "integer",
    default: 600,
    min: 1,
    description: "PostgreSQL sink: seconds writes wait for a database that went away (nothing is acked meanwhile) before they fail.",
  },
  maxItemBytes: {
    key: "max_item_bytes",
    type: "integer",
    default: 8 * 1024 * 1024,
    min: 1,
    description: "Most bytes of JSON one item may take in any sink; a page with a bigger item (or one JSON cannot hold: a BigInt, a cycle) is dead-lettered with the reason.",
  },
  mode: {
    key: "mode",
    type: "enum",
    default: "replace",
    values: ["replace", "append"],
    description: 'run-standalone: a fresh run "replace"s each <module>.jsonl or "append"s to it (a --resume run always continues it).',
  },
};

const stateFields: FieldTable<StateConfig> = {
  dir: {
    key: "dir",
    type: "string",
    default: "state",
    description: "run-standalone keeps its frontier (queued requests, seen set, dead letters, stored marks) in <dir>/<name>.",
  },
  fsync: {
    key: "fsync",
    type: "boolean",
    default: false,
    description: "fsync every batch of state writes: survives power loss, not only a killed process (slower).",
  },
  segmentMb: {
    key: "segment_mb",
    type: "integer",
    default: 16,
    min: 1,
    max: 1024,
    description: "Size of one frontier log segment in MB; settled segments are deleted whole.",
  },
};

// --- middleware and scheduler (issue 13) ---
const middlewareFields: FieldTable<MiddlewareConfig> = {
  userAgents: {
    key: "user_agents",
    type: "string[]",
    default: [],
    description: "User agents to rotate over (round robin) for requests that set none; empty = off.",
  },
  defaultHeaders: {
    key: "default_headers",
    type: "string[]",
    default: [],
    description: 'Headers added to every request that lacks them, as "Name: value".',
  },
  requiredFields: {
    key: "required_fields",
    type: "string[]",
    default: [],
    description: "Items with any of these fields missing, null, blank or [] are dropped (counted).",
  },
  itemSchema: {
    key: "item_schema",
    type: "string",
    default: "",
    description: "Path of a JSON Schema file; items that do not match are dropped (counted); empty = off.",
  },
  paths: {
    key: "paths",
    type: "string[]",
    default: [],
    description: "Files whose default export is a middleware (or an array of them), registered for every module.",
  },
};

const schedulerFields: FieldTable<SchedulerConfig> = {
  misfireToleranceSecs: {
    key: "misfire_tolerance_secs",
    type: "integer",
    default: 300,
    min: 0,
    description: "A tick missed (e.g. during a leader failover) is submitted late within this many seconds, skipped after.",
  },
  concurrency: {
    key: "concurrency",
    type: "integer",
    default: 100,
    min: 1,
    description: "Scheduled modules submitted at once when a tick is due.",
  },
  leaderLeaseSecs: {
    key: "leader_lease_secs",
    type: "number",
    default: 10,
    min: 0.5,
    description: "Lease of the leader key <name>:leader:cron; a dead leader is replaced within 2 x this.",
  },
};
// --- end middleware and scheduler ---
// [db] (mocra's DatabaseConfig)
const dbFields: FieldTable<DbConfig> = {
  url: {
    key: "url",
    type: "string",
    default: "",
    description: 'Database URL, as mocra: "postgres://user:pass@host:5432/db" (used by output.sink = "postgres"); empty = none.',
  },
  databaseSchema: {
    key: "database_schema",
    type: "string",
    default: "public",
    pattern: /^[A-Za-z_][A-Za-z0-9_]*$/,
    patternDescription: "a SQL identifier (letters, digits, _; not starting with a digit)",
    description: "Schema of the items tables (<database_schema>.items_<module>); created if missing.",
  },
  poolSize: {
    key: "pool_size",
    type: "integer",
    default: 4,
    min: 1,
    description: "Connections in the PostgreSQL pool.",
  },
  tls: {
    key: "tls",
    type: "boolean",
    default: false,
    description: "Require TLS to the database (sslmode=require).",
  },
};

/**
 * Keys of mocra's config that mocra-ts accepts and ignores (they configure parts mocra-ts does
 * not have or does differently); the loader warns once per key: "ignored (mocra key, no effect
 * here)". Listed by section path; `MOCRA_IGNORED_SECTIONS` are whole sections, whatever they hold.
 * mocra's `common/src/model/config.rs` at the Redis Streams era (23b1ed4) and at 0.4.1.
 */
export const MOCRA_IGNORED_KEYS: Readonly<Record<string, readonly string[]>> = {
  crawler: [
    "task_max_errors",
    "module_max_errors",
    "module_locker_ttl",
    "node_id",
    "publish_concurrency",
    "parser_concurrency",
    "error_task_concurrency",
    "backpressure_retry_delay_ms",
    "idle_stop_secs",
  ],
  download_config: ["downloader_expire", "enable_session", "enable_locker", "wss_timeout"],
  cache: ["enable_l1", "l1_ttl_secs"],
  "channel_config.redis": ["pool_size"],
  "cache.redis": ["pool_size", "shards", "claim_min_idle", "claim_count", "claim_interval", "listener_count"],
  // misfire_tolerance_secs and concurrency have their effect (src/sync/cron.ts); these tune mocra's schedule cache
  scheduler: ["refresh_interval_secs", "max_staleness_secs"],
};

export const MOCRA_IGNORED_SECTIONS: readonly string[] = [
  "cookie",
  "event_bus",
  "sync",
  "proxy",
  "policy",
  "channel_config.kafka",
  "channel_config.compensator",
];

const apiFields: FieldTable<ApiConfig> = {
  port: {
    key: "port",
    type: "integer",
    default: 0,
    min: 0,
    max: 65535,
    description: "Port of the HTTP API and dashboard (/, /health, /metrics, /observability/engine, /control/*); 0 = off.",
  },
  host: {
    key: "host",
    type: "string",
    default: "127.0.0.1",
    pattern: /^[^\s]+$/,
    patternDescription: "an address or host name to listen on",
    description: 'Address the API listens on; "0.0.0.0" for every interface.',
  },
  apiKey: {
    key: "api_key",
    type: "string",
    default: "",
    description: "Key for /start_work, /nodes, /dlq, /control/* (Bearer or x-api-key); empty = those routes answer 403.",
  },
  rateLimit: {
    key: "rate_limit",
    type: "number",
    default: 0,
    min: 0,
    description: "Requests per second per caller (its key, or anonymous) on every route but / and /health; 0 = unlimited.",
  },
  allowedHosts: {
    key: "allowed_hosts",
    type: "string[]",
    default: [],
    description:
      "Host names a request's Host header may carry besides the listening address, IP addresses and localhost (e.g. the name of a reverse proxy); any other Host is refused (403), against DNS rebinding.",
  },
  maxBodyBytes: {
    key: "max_body_bytes",
    type: "integer",
    default: 65536,
    min: 1,
    description: "Largest request body the API reads, bytes; a larger one is refused with 413 without being read.",
  },
};

const browserFields: FieldTable<BrowserConfig> = {
  executable: {
    key: "executable",
    type: "string",
    default: "",
    description: "Path of the Chromium binary; empty = /usr/bin/chromium (or chromium-browser, google-chrome). Nothing is downloaded.",
  },
  concurrency: {
    key: "concurrency",
    type: "integer",
    default: 2,
    min: 1,
    description: "Pages rendering at once in this process (browser_concurrency); more renders wait for a page.",
  },
  recyclePages: {
    key: "recycle_pages",
    type: "integer",
    default: 200,
    min: 0,
    description: "Pages a browser renders before a fresh one replaces it (bounds its memory); 0 = never.",
  },
  blockResources: {
    key: "block_resources",
    type: "string[]",
    default: ["image", "font", "media"],
    description: "Sub-resource types the browser does not fetch (Playwright's resource types: image, font, media, stylesheet, ...).",
  },
  launchTimeoutSecs: {
    key: "launch_timeout_secs",
    type: "number",
    default: 30,
    exclusiveMin: 0,
    description: "How long starting Chromium may take.",
  },
};

const loggerFields: FieldTable<LoggerConfig> = {
  enabled: {
    key: "enabled",
    type: "boolean",
    default: true,
    description: "false = no log lines (the progress line and a run's summary still print).",
  },
  level: {
    key: "level",
    type: "enum",
    default: "info",
    values: ["debug", "info", "warn", "error"],
    description: "Least severe log line printed (--log-level overrides).",
  },
  format: {
    key: "format",
    type: "enum",
    default: "text",
    values: ["text", "json"],
    description: '"text" lines, or "json": one JSON object per line (time, level, msg, fields).',
  },
};

function section(
  parentPath: string,
  key: string,
  prop: string,
  description: string,
  fields: Readonly<Record<string, FieldSpec>>,
  sections: readonly SectionSpec[] = [],
  inheritsFrom?: string,
  optional?: boolean,
): SectionSpec {
  const path = parentPath === "" ? key : `${parentPath}.${key}`;
  const spec: SectionSpec = inheritsFrom === undefined
    ? { key, prop, path, description, fields, sections }
    : { key, prop, path, description, fields, sections, inheritsFrom };
  return optional ? { ...spec, optional } : spec;
}

/** The whole schema as a tree rooted at the top level of the file. */
export const CONFIG_SCHEMA: SectionSpec = {
  key: "",
  prop: "",
  path: "",
  description: "Top level.",
  fields: rootFields,
  sections: [
    section("", "crawler", "crawler", "Engine behaviour.", crawlerFields),
    section("", "download_config", "downloadConfig", "HTTP downloader.", downloadFields),
    section("", "channel_config", "channelConfig", "Queues.", channelFields, [
      section(
        "channel_config",
        "redis",
        "redis",
        "Redis used for the queues (distributed mode; with [channel_config.nats] for dedup and coordination only).",
        channelRedisFields,
      ),
      section(
        "channel_config",
        "nats",
        "nats",
        "NATS JetStream for the queues (mocra 0.4.1's layout); present = queues on JetStream, Redis then serves coordination only.",
        channelNatsFields,
        [],
        undefined,
        true,
      ),
      section(
        "channel_config",
        "blob_storage",
        "blobStorage",
        "Large-payload storage outside Redis.",
        blobStorageFields,
      ),
    ]),
    section("", "cache", "cache", "Two-level cache.", cacheFields, [
      section(
        "cache",
        "redis",
        "redis",
        "Redis for the cache; absent = use [channel_config.redis]; missing keys inherit from it.",
        redisConnectionFields,
        [],
        "channel_config.redis",
      ),
    ]),
    section("", "output", "output", "Where scraped items are written.", outputFields),
    section("", "middleware", "middleware", "Middleware registered for every module.", middlewareFields),
    section("", "scheduler", "scheduler", "Cron schedules (run on the elected leader).", schedulerFields),
    section("", "db", "db", "Database (mocra's [db]): the PostgreSQL items store.", dbFields),
    section("", "state", "state", "run-standalone's state on disk, for --resume.", stateFields),
    section("", "api", "api", "Observability and control API, dashboard at GET /.", apiFields),
    section("", "logger", "logger", "Log lines on stderr.", loggerFields),
    section("", "browser", "browser", 'Headless Chromium for pages that need a browser (render = "browser" or "auto").', browserFields),
  ],
};

/** One row per key of the schema, in file order. */
export interface FieldRow {
  /** Dotted TOML path, e.g. "crawler.task_concurrency". */
  readonly path: string;
  readonly section: SectionSpec;
  readonly field: FieldSpec;
  /** camelCase property path in `Config`, e.g. ["crawler", "taskConcurrency"]. */
  readonly propPath: readonly string[];
}

function collectRows(spec: SectionSpec, propPath: readonly string[], out: FieldRow[]): void {
  for (const [prop, field] of Object.entries(spec.fields)) {
    out.push({
      path: spec.path === "" ? field.key : `${spec.path}.${field.key}`,
      section: spec,
      field,
      propPath: [...propPath, prop],
    });
  }
  for (const sub of spec.sections) collectRows(sub, [...propPath, sub.prop], out);
}

/** The flat table of every key: path, type, default, constraint, description. */
export const CONFIG_FIELDS: readonly FieldRow[] = (() => {
  const rows: FieldRow[] = [];
  collectRows(CONFIG_SCHEMA, [], rows);
  return rows;
})();

/** Every section (the root included), depth first. */
export const CONFIG_SECTIONS: readonly SectionSpec[] = (() => {
  const out: SectionSpec[] = [];
  const walk = (s: SectionSpec): void => {
    out.push(s);
    s.sections.forEach(walk);
  };
  walk(CONFIG_SCHEMA);
  return out;
})();

/** Finds a section by dotted TOML path ("" = root). */
export function findSection(path: string): SectionSpec | undefined {
  return CONFIG_SECTIONS.find((s) => s.path === path);
}

// ---------------------------------------------------------------------------------------
// Constraint wording (shared by error messages and the generated config.toml)
// ---------------------------------------------------------------------------------------

function quoteList(values: readonly string[]): string {
  return values.map((v) => JSON.stringify(v)).join(", ");
}

/** What a valid value looks like, as the tail of "<key> must be ...". */
export function expectation(field: FieldSpec): string {
  switch (field.type) {
    case "string":
      return field.pattern ? (field.patternDescription ?? `a string matching ${field.pattern}`) : "a string";
    case "integer":
      if (field.min !== undefined && field.max !== undefined) {
        return `an integer between ${field.min} and ${field.max}`;
      }
      if (field.min !== undefined) return `an integer >= ${field.min}`;
      if (field.max !== undefined) return `an integer <= ${field.max}`;
      return "an integer";
    case "number": {
      const parts: string[] = [];
      if (field.exclusiveMin !== undefined) parts.push(`> ${field.exclusiveMin}`);
      if (field.min !== undefined) parts.push(`>= ${field.min}`);
      if (field.max !== undefined) parts.push(`<= ${field.max}`);
      return parts.length > 0 ? `a number ${parts.join(" and ")}` : "a number";
    }
    case "boolean":
      return "a boolean (true or false)";
    case "string[]":
      return "an array of strings";
    case "enum":
      return `one of ${quoteList(field.values)}`;
    case "table":
      return "a table of tables";
    case "number-map":
      return field.min !== undefined ? `a table of numbers >= ${field.min}` : "a table of numbers";
  }
}

/** Short constraint text for documentation, e.g. "integer >= 1" or "json | msgpack | rmp". */
export function constraintText(field: FieldSpec): string {
  switch (field.type) {
    case "enum":
      return field.values.join(" | ");
    case "table":
      return "table";
    case "number-map":
      return field.min !== undefined ? `table of numbers >= ${field.min}` : "table of numbers";
    case "boolean":
      return "boolean";
    default:
      return expectation(field).replace(/^an? /, "");
  }
}

// ---------------------------------------------------------------------------------------
// Derived values
// ---------------------------------------------------------------------------------------

/** `crawler.prefetch`, with 0 resolved to 2 x task_concurrency. */
export function effectivePrefetch(config: Config): number {
  return config.crawler.prefetch > 0 ? config.crawler.prefetch : 2 * config.crawler.taskConcurrency;
}

/** The Redis connection for the cache: `[cache.redis]` if present, else `[channel_config.redis]`. */
export function cacheRedisConnection(config: Config): RedisConnectionConfig {
  const r = config.cache.redis ?? config.channelConfig.redis;
  return {
    redisHost: r.redisHost,
    redisPort: r.redisPort,
    redisDb: r.redisDb,
    redisUsername: r.redisUsername,
    redisPassword: r.redisPassword,
    tls: r.tls,
  };
}

/** The wire format of the queue codec ("rmp" is mocra's name for MessagePack). */
export function queueCodecFormat(config: Config): "json" | "msgpack" | "bincode" {
  const c = config.channelConfig.queueCodec;
  return c === "rmp" ? "msgpack" : c;
}
