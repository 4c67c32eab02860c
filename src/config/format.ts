/**
 * Renders a Config as a commented TOML file (the repo's config.toml is this, for the defaults).
 * `parseConfig(formatConfig(c))` gives back `c`.
 */
import { stringify } from "smol-toml";
import { CONFIG_SCHEMA, constraintText, type Config, type FieldSpec, type SectionSpec } from "./schema.ts";

/** One TOML value as it would appear after "key = ". */
function tomlValue(v: unknown): string {
  const line = stringify({ v }).trim();
  return line.replace(/^v = /, "");
}

function fieldComment(field: FieldSpec, value: unknown): string {
  const def = tomlValue(field.default);
  const note = tomlValue(value) === def ? "" : `; default ${def}`;
  return `# ${field.description} [${constraintText(field)}${note}]`;
}

function get(obj: unknown, prop: string): unknown {
  return (obj as Record<string, unknown>)[prop];
}

function emitSection(
  spec: SectionSpec,
  values: unknown,
  out: string[],
  commented: boolean,
  root: Config,
): void {
  const c = commented ? "# " : "";
  if (spec.path !== "") {
    out.push("");
    out.push(`# ${spec.description}`);
    out.push(`${c}[${spec.path}]`);
  }
  for (const [prop, field] of Object.entries(spec.fields)) {
    if (field.type === "table" || field.type === "number-map") continue; // tables are emitted last
    const value = get(values, prop);
    out.push(fieldComment(field, value));
    out.push(`${c}${field.key} = ${tomlValue(value)}`);
  }
  for (const sub of spec.sections) {
    const v = get(values, sub.prop);
    if (v === null || v === undefined) {
      // An optional section that is absent: show it commented out, with the values it inherits.
      const from = sub.inheritsFrom ?? "";
      const inherited = from === "" ? defaultsOf(sub) : lookup(root, from);
      emitSection(sub, inherited ?? {}, out, true, root);
    } else {
      emitSection(sub, v, out, commented, root);
    }
  }
}

/** A section's own defaults (an optional section that inherits from none). */
function defaultsOf(spec: SectionSpec): Record<string, unknown> {
  return Object.fromEntries(Object.entries(spec.fields).map(([prop, field]) => [prop, field.default]));
}

/** The object at a dotted TOML path, resolved from the root config. */
function lookup(root: Config, path: string): unknown {
  let spec: SectionSpec = CONFIG_SCHEMA;
  let obj: unknown = root;
  for (const key of path.split(".")) {
    const sub = spec.sections.find((s) => s.key === key);
    if (sub === undefined) return undefined;
    obj = get(obj, sub.prop);
    spec = sub;
  }
  return obj;
}

/** A commented TOML rendering of `config`; `header` lines are put first as comments. */
export function formatConfig(config: Config, header: readonly string[] = []): string {
  const out: string[] = header.map((l) => (l === "" ? "#" : `# ${l}`));
  if (out.length > 0) out.push("");
  emitSection(CONFIG_SCHEMA, config, out, false, config);
  out.push("");
  const rateLimits = CONFIG_SCHEMA.fields.rateLimits;
  if (rateLimits !== undefined) {
    out.push(`# ${rateLimits.description} [${constraintText(rateLimits)}]`);
    if (Object.keys(config.rateLimits).length === 0) out.push("[rate_limits]", '# "example.com" = 2.5');
    else out.push(stringify({ rate_limits: config.rateLimits }).trim());
    out.push("");
  }
  const names = Object.keys(config.modules);
  if (names.length === 0) {
    out.push("# [modules.<name>]");
    out.push("# Free-form settings passed to the module of that name, e.g.:");
    out.push("# [modules.example]");
    out.push('# start_urls = ["https://example.com/"]');
  } else {
    out.push("# Free-form settings passed to each module.");
    out.push(stringify({ modules: config.modules }).trim());
  }
  return `${out.join("\n")}\n`;
}
