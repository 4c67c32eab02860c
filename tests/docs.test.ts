// The README and docs/ as written: every relative link leads to a file, every complete module
// in a ```ts block loads and registers, every ```toml block is a valid config (alone, or as the
// heredoc of a ```sh recipe), and every CLI command a ```sh block runs exists. The examples the
// docs quote in full (examples/*.ts) are checked verbatim and run by their own tests.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { parseConfig } from "../src/config/index.ts";
import type { CrawlModule } from "../src/modules/define.ts";
import { ModuleRegistry } from "../src/modules/registry.ts";
import { ROOT } from "./helpers/worker-process.ts";

const PAGES = ["README.md", ...readdirSync(join(ROOT, "docs")).filter((f) => f.endsWith(".md")).map((f) => `docs/${f}`)];

interface Block {
  page: string;
  lang: string;
  code: string;
}

const BLOCKS: Block[] = PAGES.flatMap((page) =>
  [...readFileSync(join(ROOT, page), "utf8").matchAll(/^```(\w*)\n([\s\S]*?)^```/gm)].map((m) => ({ page, lang: m[1]!, code: m[2]! })),
);

/** The commands src/cli.ts knows, read from its command table. */
const CLI_COMMANDS = new Set(
  [...readFileSync(join(ROOT, "src/cli.ts"), "utf8").matchAll(/^\s+"?([a-z-]+)"?: \{ run: /gm)].map((m) => m[1]!),
);

describe("docs", () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it("every relative link in the README and docs/ leads to a file or folder of the repository", () => {
    const broken: string[] = [];
    for (const page of PAGES) {
      const text = readFileSync(join(ROOT, page), "utf8").replace(/^```[\s\S]*?^```/gm, "");
      for (const m of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        const target = m[1]!.split("#")[0]!;
        if (target === "" || /^[a-z]+:/.test(target)) continue;
        if (!existsSync(resolve(ROOT, dirname(page), target))) broken.push(`${page}: ${m[1]}`);
      }
    }
    expect(broken).toEqual([]);
  });

  it("every complete module in a ```ts block loads and registers", async () => {
    const modules = BLOCKS.filter((b) => b.lang === "ts" && /export default defineModule\(/.test(b.code));
    expect(modules.length).toBeGreaterThan(0);
    const dir = await mkdtemp(join(tmpdir(), "mocra-docs-"));
    dirs.push(dir);
    for (const [i, b] of modules.entries()) {
      // the snippets import the engine as a file in modules/ does ("../src/index.ts")
      const code = b.code.replace(/from "\.\.\/src\//g, `from "${pathToFileURL(join(ROOT, "src")).href}/`);
      const file = join(dir, `snippet_${i}.ts`);
      await writeFile(file, code);
      const mod = ((await import(pathToFileURL(file).href)) as { default: CrawlModule }).default;
      expect(() => new ModuleRegistry().register(mod), `${b.page}: ${b.code.split("\n")[0]}`).not.toThrow();
    }
  });

  it("every ```toml block, and every config a ```sh recipe writes, is a valid config", () => {
    const configs = [
      ...BLOCKS.filter((b) => b.lang === "toml").map((b) => ({ page: b.page, text: b.code })),
      ...BLOCKS.filter((b) => b.lang === "sh").flatMap((b) => [...b.code.matchAll(/<<'TOML'[^\n]*\n([\s\S]*?)^TOML$/gm)].map((m) => ({ page: b.page, text: m[1]! }))),
    ];
    expect(configs.length).toBeGreaterThan(0);
    for (const c of configs) expect(() => parseConfig(c.text, `${c.page} snippet`), c.text).not.toThrow();
  });

  it("every CLI command a ```sh block runs exists", () => {
    const unknown: string[] = [];
    for (const b of BLOCKS.filter((x) => x.lang === "sh")) {
      for (const m of b.code.matchAll(/(?:npx mocra-ts|src\/cli\.ts|deno task) ([a-z-]+)/g)) {
        if (!CLI_COMMANDS.has(m[1]!) && m[1] !== "test" && m[1] !== "demo") unknown.push(`${b.page}: ${m[0]}`);
      }
    }
    expect(CLI_COMMANDS.size).toBeGreaterThan(5);
    expect(unknown).toEqual([]);
  });
});
