// src/config/validator.ts: checks a parsed TOML table against the schema (schema.ts) and builds
// the Config, collecting every problem (unknown keys with "did you mean", wrong types, impossible
// values, cross-field checks) and the mocra keys that are accepted without effect.

import {
  CONFIG_FIELDS,
  CONFIG_SCHEMA,
  CONFIG_SECTIONS,
  expectation,
  MOCRA_IGNORED_KEYS,
  MOCRA_IGNORED_SECTIONS,
  type Config,
  type FieldSpec,
  type SectionSpec,
  type SettingsTable,
  type SettingValue,
} from "./schema.ts";
import { ConfigError, type ConfigIssue, redactUrl } from "./issues.ts";
import { KeyLines } from "./key-lines.ts";
import { closest, dotted, normalizeKey } from "./key-names.ts";

type RawTable = Record<string, unknown>;
type Checked = { ok: true; value: unknown } | { ok: false };

function isTable(v: unknown): v is RawTable {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

/** A short rendering of a value for "got ..." (TOML-like: strings quoted, nan, inf). */
function describeValue(v: unknown, depth = 0): string {
  if (typeof v === "string") {
    const s = JSON.stringify(v);
    return s.length > 60 ? `${s.slice(0, 57)}..."` : s;
  }
  if (typeof v === "number") {
    if (Number.isNaN(v)) return "nan";
    if (v === Infinity) return "inf";
    if (v === -Infinity) return "-inf";
    return String(v);
  }
  if (typeof v === "boolean" || typeof v === "bigint") return String(v);
  if (v instanceof Date) return v.toISOString();
  if (Array.isArray(v)) {
    if (depth > 0) return "[...]";
    const s = `[${v.map((x) => describeValue(x, depth + 1)).join(", ")}]`;
    return s.length > 60 ? `${s.slice(0, 56)}...]` : s;
  }
  if (isTable(v)) return "a table";
  return String(v);
}

/** Copies a parsed TOML value into plain objects (the parser makes null-prototype ones). */
function toSetting(v: unknown): SettingValue {
  if (Array.isArray(v)) return v.map(toSetting);
  if (isTable(v)) {
    const out: SettingsTable = {};
    for (const [k, x] of Object.entries(v)) {
      Object.defineProperty(out, k, {
        value: toSetting(x),
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
    return out;
  }
  return v as SettingValue;
}

function cloneDefault(field: FieldSpec): unknown {
  switch (field.type) {
    case "string[]":
      return [...field.default];
    case "table": {
      const out: Record<string, SettingsTable> = {};
      for (const [k, t] of Object.entries(field.default)) out[k] = toSetting(t) as SettingsTable;
      return out;
    }
    case "number-map":
      return { ...field.default };
    default:
      return field.default;
  }
}

/** The message of a mocra key or section mocra-ts accepts without using it. */
const IGNORED = "ignored (mocra key, no effect here)";

export class Validator {
  private readonly issues: ConfigIssue[] = [];
  private readonly warnings: ConfigIssue[] = [];
  private readonly built = new Map<string, Record<string, unknown>>();
  private keyLines: KeyLines | undefined;

  constructor(
    private readonly file: string,
    private readonly text: string,
  ) {}

  /** Builds the whole Config from a parsed document (undefined = all defaults). */
  build(raw: RawTable | undefined): Config {
    return this.section(CONFIG_SCHEMA, raw, [], undefined) as unknown as Config;
  }

  crossChecks(config: Config, raw: RawTable = {}): void {
    const channel = isTable(raw.channel_config) ? raw.channel_config : {};
    if (config.channelConfig.nats !== null && !isTable(channel.redis) && !(isTable(raw.cache) && isTable(raw.cache.redis))) {
      // coordination has no JetStream implementation here: a NATS deployment names its Redis
      this.report(
        ["channel_config", "nats"],
        "[channel_config.nats] puts the queues on JetStream, but dedup, rate limits, leases, budgets, pause, locks, leader and cron need Redis: add [channel_config.redis] (or [cache.redis])",
      );
    }
    const db = config.db;
    const dbUrl = ["db", "url"];
    if (config.output.sink === "postgres") {
      if (db.url === "") {
        this.report(["output", "sink"], 'output.sink = "postgres" needs [db] url = "postgres://user:password@host:5432/database"');
      } else if (/^sqlite:/i.test(db.url)) {
        this.report(dbUrl, 'db.url: SQLite is not supported by the items store here (use a "postgres://" URL, or output.sink = "jsonl")');
      } else if (!/^postgres(ql)?:\/\//i.test(db.url)) {
        this.report(dbUrl, `db.url must be a "postgres://" or "postgresql://" URL, got ${describeValue(redactUrl(db.url))}`);
      }
    } else if (db.url !== "") {
      this.warn(dbUrl, `db.url ${IGNORED} unless output.sink = "postgres"`);
    }
    const c = config.crawler;
    if (c.retryMaxDelayMs < c.retryBaseDelayMs) {
      const maxPath = ["crawler", "retry_max_delay_ms"];
      const basePath = ["crawler", "retry_base_delay_ms"];
      const at = this.lines().exact(maxPath) !== undefined ? maxPath : basePath;
      this.report(
        at,
        `crawler.retry_max_delay_ms must be >= crawler.retry_base_delay_ms (${c.retryBaseDelayMs}), got ${c.retryMaxDelayMs}`,
      );
    }
  }

  sortedWarnings(): ConfigIssue[] {
    return this.warnings
      .map((issue, i) => ({ issue, i }))
      .sort((a, b) => (a.issue.line ?? Infinity) - (b.issue.line ?? Infinity) || a.i - b.i)
      .map((x) => x.issue);
  }

  throwIfIssues(): void {
    if (this.issues.length === 0) return;
    const sorted = this.issues
      .map((issue, i) => ({ issue, i }))
      .sort((a, b) => {
        const la = a.issue.line ?? Infinity;
        const lb = b.issue.line ?? Infinity;
        return la !== lb ? la - lb : a.i - b.i;
      })
      .map((x) => x.issue);
    throw new ConfigError(this.file, sorted);
  }

  private lines(): KeyLines {
    this.keyLines ??= new KeyLines(this.text);
    return this.keyLines;
  }

  private report(parts: readonly string[], message: string, to: ConfigIssue[] = this.issues): void {
    const line = this.text === "" ? undefined : this.lines().find(parts);
    const issue: ConfigIssue =
      line === undefined
        ? { file: this.file, key: dotted(parts), message }
        : { file: this.file, line, key: dotted(parts), message };
    to.push(issue);
  }

  private warn(parts: readonly string[], message: string): void {
    this.report(parts, message, this.warnings);
  }

  /** A key of mocra's config that has no effect here: warned about (once), not an error. */
  private ignoredMocraKey(spec: SectionSpec, key: string, path: readonly string[]): boolean {
    const sectionPath = spec.path === "" ? key : `${spec.path}.${key}`;
    if (MOCRA_IGNORED_SECTIONS.includes(sectionPath)) {
      this.warn(path, `[${dotted(path)}] ${IGNORED}`);
      return true;
    }
    if (MOCRA_IGNORED_KEYS[spec.path]?.includes(key) === true) {
      this.warn(path, `${dotted(path)} ${IGNORED}`);
      return true;
    }
    return false;
  }

  private section(
    spec: SectionSpec,
    raw: RawTable | undefined,
    parts: readonly string[],
    inherited: Record<string, unknown> | undefined,
  ): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    const fieldsByKey = new Map<string, [string, FieldSpec]>();
    for (const [prop, field] of Object.entries(spec.fields)) fieldsByKey.set(field.key, [prop, field]);
    const subsByKey = new Map<string, SectionSpec>(spec.sections.map((s) => [s.key, s]));

    if (raw !== undefined) {
      for (const [key, value] of Object.entries(raw)) {
        const path = [...parts, key];
        const f = fieldsByKey.get(key);
        if (f !== undefined) {
          const [prop, field] = f;
          const r = this.field(field, value, path);
          if (r.ok) out[prop] = r.value;
          continue;
        }
        if (subsByKey.has(key)) {
          if (!isTable(value)) {
            this.report(path, `${dotted(path)} must be a table (a [${dotted(path)}] section), got ${describeValue(value)}`);
          }
          continue;
        }
        this.unknown(spec, key, value, path);
      }
    }

    for (const [prop, field] of Object.entries(spec.fields)) {
      if (prop in out) continue;
      out[prop] = inherited !== undefined && prop in inherited ? inherited[prop] : cloneDefault(field);
    }

    for (const sub of spec.sections) {
      const rawSub = raw?.[sub.key];
      const subRaw = isTable(rawSub) ? rawSub : undefined;
      if (sub.inheritsFrom !== undefined || sub.optional) {
        out[sub.prop] =
          subRaw === undefined
            ? null
            : this.section(sub, subRaw, [...parts, sub.key], sub.inheritsFrom === undefined ? undefined : this.built.get(sub.inheritsFrom));
      } else {
        out[sub.prop] = this.section(sub, subRaw, [...parts, sub.key], undefined);
      }
    }

    this.built.set(spec.path, out);
    return out;
  }

  private unknown(spec: SectionSpec, key: string, value: unknown, path: readonly string[]): void {
    if (this.ignoredMocraKey(spec, key, path)) return;
    const isSection = isTable(value);
    const kind = isSection ? "section" : "key";
    // First: a near miss among this section's own keys and sub-sections (mocra's ignored ones too).
    const prefix = spec.path === "" ? "" : `${spec.path}.`;
    const local = [
      ...Object.values(spec.fields).map((f) => f.key),
      ...spec.sections.map((s) => s.key),
      ...(MOCRA_IGNORED_KEYS[spec.path] ?? []),
      ...MOCRA_IGNORED_SECTIONS.filter((p) => p.startsWith(prefix) && !p.slice(prefix.length).includes(".")).map((p) => p.slice(prefix.length)),
    ];
    let hint = closest(key, local);
    if (hint === undefined) {
      // Then: the same name elsewhere ("redis_host" put in [channel_config]).
      const n = normalizeKey(key);
      const elsewhere = isSection
        ? CONFIG_SECTIONS.find((s) => s.path !== "" && normalizeKey(s.key) === n)?.path
        : CONFIG_FIELDS.find((r) => normalizeKey(r.field.key) === n)?.path;
      hint = elsewhere;
    }
    const suffix = hint === undefined ? "" : ` (did you mean "${hint}"?)`;
    // Without a suggestion, list what this section does accept of the same kind.
    const sameKind = isSection
      ? [
          ...spec.sections.map((s) => s.key),
          ...Object.values(spec.fields).filter((f) => f.type === "table" || f.type === "number-map").map((f) => f.key),
        ]
      : Object.values(spec.fields).filter((f) => f.type !== "table" && f.type !== "number-map").map((f) => f.key);
    const where = spec.path === "" ? "" : ` in [${spec.path}]`;
    const known =
      hint === undefined && sameKind.length > 0 ? `; known ${kind}s${where}: ${sameKind.join(", ")}` : "";
    this.report(path, `unknown ${kind} "${dotted(path)}"${suffix}${known}`);
  }

  private field(field: FieldSpec, v: unknown, path: readonly string[]): Checked {
    const name = dotted(path);
    const bad = (): Checked => {
      this.report(path, `${name} must be ${expectation(field)}, got ${describeValue(v)}`);
      return { ok: false };
    };
    switch (field.type) {
      case "string":
        if (typeof v !== "string") return bad();
        if (field.pattern !== undefined && !field.pattern.test(v)) return bad();
        return { ok: true, value: v };
      case "integer":
        if (typeof v !== "number" || !Number.isSafeInteger(v)) return bad();
        if (field.min !== undefined && v < field.min) return bad();
        if (field.max !== undefined && v > field.max) return bad();
        return { ok: true, value: v };
      case "number":
        if (typeof v !== "number" || !Number.isFinite(v)) return bad();
        if (field.exclusiveMin !== undefined && !(v > field.exclusiveMin)) return bad();
        if (field.min !== undefined && v < field.min) return bad();
        if (field.max !== undefined && v > field.max) return bad();
        return { ok: true, value: v };
      case "boolean":
        if (typeof v !== "boolean") return bad();
        return { ok: true, value: v };
      case "string[]":
        if (!Array.isArray(v) || !v.every((x) => typeof x === "string")) return bad();
        return { ok: true, value: [...(v as string[])] };
      case "enum": {
        if (typeof v === "string" && field.caseInsensitive === true) v = v.trim().toLowerCase();
        if (typeof v === "string" && field.unsupported !== undefined && Object.hasOwn(field.unsupported, v)) {
          this.report(path, `${name} ${JSON.stringify(v)} ${field.unsupported[v]}`);
          return { ok: false };
        }
        if (typeof v !== "string" || !field.values.includes(v)) return bad();
        return { ok: true, value: v };
      }
      case "table": {
        if (!isTable(v)) return bad();
        const out: Record<string, SettingsTable> = {};
        let ok = true;
        for (const [k, entry] of Object.entries(v)) {
          const entryPath = [...path, k];
          if (!isTable(entry)) {
            this.report(
              entryPath,
              `${dotted(entryPath)} must be a table (a [${dotted(entryPath)}] section), got ${describeValue(entry)}`,
            );
            ok = false;
            continue;
          }
          Object.defineProperty(out, k, {
            value: toSetting(entry),
            enumerable: true,
            writable: true,
            configurable: true,
          });
        }
        return ok ? { ok: true, value: out } : { ok: false };
      }
      case "number-map": {
        if (!isTable(v)) return bad();
        const out: Record<string, number> = {};
        let ok = true;
        for (const [k, entry] of Object.entries(v)) {
          const entryPath = [...path, k];
          if (typeof entry !== "number" || !Number.isFinite(entry) || (field.min !== undefined && entry < field.min)) {
            const min = field.min !== undefined ? ` >= ${field.min}` : "";
            this.report(entryPath, `${dotted(entryPath)} must be a number${min}, got ${describeValue(entry)}`);
            ok = false;
            continue;
          }
          Object.defineProperty(out, k, { value: entry, enumerable: true, writable: true, configurable: true });
        }
        return ok ? { ok: true, value: out } : { ok: false };
      }
    }
  }
}
