import { existsSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { dirname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { UsageError } from "./common.ts";

export const usage = `usage: new NAME [--dir DIR] [--url URL]

Writes a module skeleton to DIR/NAME.ts (default dir: modules): a start URL, a parse that emits
the page title and follows the page's links, and the settings you are most likely to change.
Refuses to overwrite a file that exists.

  --dir DIR   where to write it (default: modules)
  --url URL   the start URL (default https://example.com/)`;

/** The text of a new module file (imports resolved from `dir` to this project's src/index.ts). */
export function moduleSkeleton(name: string, startUrl: string, importPath: string): string {
  const cli = importPath.startsWith("mocra-ts") ? "npx mocra-ts" : "npx tsx src/cli.ts";
  return `// modules/${name}.ts: written by \`new ${name}\`. Try it on one page without crawling:
//   ${cli} parse --module ${name} ${startUrl}
// then crawl: ${cli} run-standalone --module ${name}
import { defineModule } from ${JSON.stringify(importPath)};

export default defineModule({
  name: ${JSON.stringify(name)},
  settings: {
    startUrl: ${JSON.stringify(startUrl)}, // [modules.${name}] start_url = "..." in config.toml overrides it
    allowedDomains: [${JSON.stringify(hostOf(startUrl))}],
    maxDepth: 3, // link hops from the start page; 0 = unlimited
    // rateLimit: 2, // requests per second per domain
    // maxRequests: 1000, maxItems: 0, maxRetries: 3,
  },

  start: ({ settings }) => [String(settings.startUrl)],

  parse(page, ctx) {
    ctx.emit({ url: page.url, title: page.text("title") });
    ctx.follow(page.links("a"));
  },
});
`;
}

/**
 * How a module in `dir` imports defineModule: by package name (`mocra-ts/module`, which loads
 * nothing of the engine) where the package is installed (a project of the user's own, or the CLI
 * running from an installed package); from a clone of this repository, which does not install
 * itself, by a relative path to src/modules/define.ts.
 */
function importPathFrom(dir: string): string {
  const entry = fileURLToPath(new URL("../modules/define.ts", import.meta.url));
  if (!existsSync(entry)) return "mocra-ts/module";
  for (let d = dir; ; d = dirname(d)) {
    if (existsSync(join(d, "node_modules", "mocra-ts", "package.json"))) return "mocra-ts/module";
    if (dirname(d) === d) break;
  }
  const rel = relative(dir, entry).split(sep).join("/");
  return rel.startsWith(".") ? rel : `./${rel}`;
}

function hostOf(url: string): string {
  try {
    return new URL(url).hostname;
  } catch {
    return "example.com";
  }
}

export async function newModuleCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { dir: { type: "string" }, url: { type: "string" }, help: { type: "boolean", short: "h" } },
  });
  if (values.help) {
    console.log(usage);
    return 0;
  }
  const [name] = positionals;
  if (!name || positionals.length !== 1) throw new UsageError("give the module's name");
  if (!/^[A-Za-z0-9_.-]+$/.test(name)) throw new UsageError(`a module name is letters, digits, _ . or -, got ${JSON.stringify(name)}`);
  const url = values.url ?? "https://example.com/";
  if (!/^https?:\/\//.test(url)) throw new UsageError(`--url must be an http(s) URL, got ${JSON.stringify(url)}`);
  const dir = resolve(values.dir ?? "modules");
  const file = join(dir, `${name}.ts`);
  if (existsSync(file)) throw new UsageError(`${file} exists; not overwriting it`);
  await mkdir(dir, { recursive: true });
  await writeFile(file, moduleSkeleton(name, url, importPathFrom(dir)));
  console.log(`wrote ${file}`);
  return 0;
}
