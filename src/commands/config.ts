import { parseArgs } from "node:util";
import { type Config, ConfigError, DEFAULT_CONFIG_FILE, formatConfig, formatIssue, loadCheckedConfig, redactUrl } from "../config/index.ts";
import { loadRegistry, UsageError } from "./common.ts";

export const usage = `usage: config check [--config PATH]

Validates a configuration file (default: ./config.toml; built-in defaults if there is none) and
prints the warnings (mocra keys that have no effect here) and the effective settings, passwords
hidden. Loads the modules it finds (as run-standalone does) to check their [modules.<name>]
sections: a key neither the engine nor the module knows is an error. Connects to nothing. Exit code 0 if the file is valid, 2 if not (every problem is
listed, one per line, with its line number).`;

/** The configuration with secrets replaced, for printing. */
function redacted(config: Config): Config {
  const c = structuredClone(config);
  if (c.channelConfig.redis.redisPassword !== "") c.channelConfig.redis.redisPassword = "***";
  if (c.cache.redis !== null && c.cache.redis.redisPassword !== "") c.cache.redis.redisPassword = "***";
  c.db.url = redactUrl(c.db.url);
  return c;
}

export async function configCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { config: { type: "string" }, help: { type: "boolean", short: "h" } },
  });
  if (values.help) {
    console.log(usage);
    return 0;
  }
  if (positionals.length !== 1 || positionals[0] !== "check") throw new UsageError(`expected \`config check\`, got ${JSON.stringify(positionals.join(" "))}`);
  const file = values.config ?? DEFAULT_CONFIG_FILE;
  let checked;
  try {
    checked = await loadCheckedConfig(values.config);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    console.log(`${file}: invalid (${err.issues.length} problem${err.issues.length === 1 ? "" : "s"})`);
    console.log(err.message);
    return 2;
  }
  const { config, warnings } = checked;
  try {
    await loadRegistry(config);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    console.log(`${file}: invalid (${err.issues.length} problem${err.issues.length === 1 ? "" : "s"})`);
    console.log(err.message);
    return 2;
  }
  console.log(`${file}: valid${warnings.length > 0 ? `, ${warnings.length} warning${warnings.length === 1 ? "" : "s"}` : ""}`);
  for (const w of warnings) console.log(`warning: ${formatIssue(w)}`);
  console.log("\n# effective settings");
  const settings = formatConfig(redacted(config))
    .split("\n")
    .filter((l) => !l.startsWith("#"))
    .join("\n")
    .replace(/\n{3,}/g, "\n\n")
    .trim();
  console.log(settings);
  return 0;
}
