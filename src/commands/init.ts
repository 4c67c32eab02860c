import { existsSync, readdirSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { basename, join, relative, resolve } from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";
import { OWN_PACKAGE } from "../observe/node-registry.ts";
import { UsageError } from "./common.ts";

export const usage = `usage: init DIR [--mocra-ts SPEC]

Writes a crawler project to DIR (created if missing; an existing DIR must be empty):
package.json depending on mocra-ts, a commented config.toml, modules/example.ts (a module for
the bundled demo shop), tests/example.test.ts (the module's test with the parse tester) and a
README. Then: cd DIR && npm install && npm start (crawls the demo shop), npm test.

  --mocra-ts SPEC   the dependency on mocra-ts as npm understands it (default ^${OWN_PACKAGE.version});
                    e.g. file:../mocra-ts-${OWN_PACKAGE.version}.tgz or a git URL`;

export async function initCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { "mocra-ts": { type: "string" }, help: { type: "boolean", short: "h" } },
  });
  if (values.help) {
    console.log(usage);
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError("give the project's directory (e.g. init my-crawler)");
  const dir = resolve(positionals[0]);
  if (existsSync(dir) && readdirSync(dir).length > 0) throw new UsageError(`${dir} is not empty; init writes only into a new or empty directory`);
  const name = projectName(basename(dir));
  const files = projectFiles(name, values["mocra-ts"] ?? `^${OWN_PACKAGE.version}`);
  for (const [path, text] of Object.entries(files)) {
    const file = join(dir, path);
    await mkdir(resolve(file, ".."), { recursive: true });
    await writeFile(file, text);
  }
  const shown = relative(process.cwd(), dir) || ".";
  console.log(`wrote ${Object.keys(files).join(", ")} to ${dir}\n\nnext:\n  cd ${shown}\n  npm install\n  npm start     # crawls the bundled demo shop with modules/example.ts\n  npm test      # the module's test`);
  return 0;
}

/** An npm package name from a directory name: lower case, letters, digits, - . _ */
function projectName(dirName: string): string {
  const name = dirName.toLowerCase().replace(/[^a-z0-9._-]+/g, "-").replace(/^[._-]+/, "");
  return name || "my-crawler";
}

/** The project's files by relative path. */
export function projectFiles(name: string, mocraSpec: string): Record<string, string> {
  const pkg = {
    name,
    version: "0.1.0",
    private: true,
    type: "module",
    scripts: {
      start: "mocra-ts run-standalone --demo --module example",
      crawl: "mocra-ts run-standalone",
      test: "node --import tsx --test tests/*.test.ts",
    },
    dependencies: { "mocra-ts": mocraSpec },
    // runs the module's test (TypeScript) under node --test; the same tsx mocra-ts loads modules with
    devDependencies: { tsx: OWN_PACKAGE.dependencies.tsx ?? "^4" },
  };
  return {
    "package.json": `${JSON.stringify(pkg, null, 2)}\n`,
    "config.toml": config(name),
    "modules/example.ts": EXAMPLE_MODULE,
    "tests/example.test.ts": EXAMPLE_TEST,
    "README.md": readme(name),
    ".gitignore": "node_modules/\n/output/\n/state/\n",
  };
}

function config(name: string): string {
  return `# mocra-ts configuration: every key is optional; the values shown are the defaults.
# \`npx mocra-ts config\` checks this file and prints every setting in effect.

# Instance name: the state folder and (distributed) every Redis key live under it.
name = ${JSON.stringify(name)}

[crawler]
# Concurrent downloads.
task_concurrency = 64
# Fetch and honour robots.txt of each host.
obey_robots_txt = true
# Link hops followed from a start page; 0 = unlimited (a module's maxDepth wins).
max_depth = 0
# Extra directories or files to load modules from, besides ./modules.
module_paths = []

[download_config]
# Requests per second per domain; 0 = unlimited (a module's rateLimit wins).
rate_limit = 0
# Request timeout in seconds.
timeout = 30

[output]
# Where items go: "jsonl" (files in path, one per module), "stdout", "redis" or "postgres".
sink = "jsonl"
path = "output"

# Settings for one module, over its own (start_url reaches it as settings.startUrl).
# [modules.example]
# start_url = "http://127.0.0.1:8787/list/0"

# Distributed mode (npx mocra-ts start-worker): the Redis all workers share.
# [channel_config.redis]
# redis_host = "127.0.0.1"
# redis_port = 6379
`;
}

const EXAMPLE_MODULE = `// modules/example.ts: a module for the demo shop bundled with mocra-ts (\`npm start\` serves it
// and crawls it with this module). List pages lead to item pages; item pages give items.
// Try it on one page without crawling:  npx mocra-ts parse --module example <url or saved file>
// A new module for another site:        npx mocra-ts new my_site --url https://example.com/
import { defineModule } from "mocra-ts/module";

export interface Product {
  url: string;
  title: string;
  price: string;
}

export default defineModule<Product>({
  name: "example",
  settings: {
    startUrl: "http://127.0.0.1:8787/list/0", // npm start points it at the demo shop
    maxRequests: 1000,
  },

  start: ({ settings }) => [String(settings.startUrl)],

  steps: {
    list(page, ctx) {
      ctx.follow(page.links("a.product-link"), { step: "item" });
      ctx.follow(page.links("a.next"), { step: "list" });
    },
    item(page, ctx) {
      ctx.emit({ url: page.url, title: page.text("h1.title"), price: page.text("span.price") });
    },
  },
});
`;

const EXAMPLE_TEST = `// tests/example.test.ts: the module's parse on real pages of the demo shop, without a crawl.
// Run with \`npm test\` (node --test).
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { itemPrice, itemTitle, type ShopServer, startShop } from "mocra-ts/demo-shop";
import { parseSource } from "mocra-ts/testing";
import example from "../modules/example.ts";

let shop: ShopServer;
before(async () => {
  shop = await startShop({ items: 120 });
});
after(() => shop.close());

test("a list page leads to its item pages and the next list page", async () => {
  const out = await parseSource(example, \`\${shop.url}/list/0\`, { step: "list" });
  assert.equal(out.items.length, 0);
  assert.equal(out.requests.filter((r) => r.step === "item").length, 50);
  assert.deepEqual(out.requests.filter((r) => r.step === "list").map((r) => r.url), [\`\${shop.url}/list/1\`]);
});

test("an item page gives one product", async () => {
  const out = await parseSource(example, \`\${shop.url}/item/7\`, { step: "item" });
  assert.deepEqual(out.items, [{ url: \`\${shop.url}/item/7\`, title: itemTitle(7), price: itemPrice(7) }]);
});
`;

function readme(name: string): string {
  return `# ${name}

A crawler built on [mocra-ts](https://www.npmjs.com/package/mocra-ts).

\`\`\`sh
npm install
npm start     # serves the bundled demo shop and crawls it with modules/example.ts; items in output/
npm test      # tests/example.test.ts: the module's parse on demo pages
\`\`\`

- \`modules/\`: one module per file (\`defineModule\` from \`mocra-ts\`); \`npx mocra-ts new NAME --url URL\`
  writes a new one. \`npx mocra-ts parse --module NAME URL\` shows what a module gets from one page.
- \`npm run crawl -- --module NAME\`: crawl with a module (the frontier is kept in state/, so
  \`--resume\` continues an interrupted run).
- \`config.toml\`: settings; \`npx mocra-ts config\` checks it. \`npx mocra-ts --help\` lists every command
  (distributed mode on Redis: \`start-worker\`, \`submit\`, \`status\`).
`;
}
