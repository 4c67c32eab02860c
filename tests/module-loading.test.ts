// Module loading: a broken file is reported with its path and skipped unless it is the module
// asked for; a helper file is no error; [modules.x] snake_case keys reach the module as written
// and in camelCase.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ModuleError, ModuleRegistry } from "../src/modules/registry.ts";
import { ROOT, runCli, writeConfig } from "./helpers/worker-process.ts";

let dir = "";
const define = JSON.stringify(join(ROOT, "src/modules/define.ts"));

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "mocra-modules-"));
  await writeFile(
    join(dir, "good.ts"),
    `import { defineModule } from ${define};\nimport { helper } from "./helpers.ts";\nexport default defineModule({ name: "good", start: () => [helper()], parse() {} });\n`,
  );
  await writeFile(join(dir, "helpers.ts"), `export function helper(): string { return "http://127.0.0.1:1/"; }\n`);
  await writeFile(join(dir, "broken.ts"), `export default {\n  name: "broken",\n  start( => 1,\n};\n`);
  await writeFile(join(dir, "not_a_module.ts"), `export default { hello: "world" };\n`);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("ModuleRegistry.load", () => {
  it("registers the modules, reports broken files with their path, says nothing of helpers", async () => {
    const registry = await new ModuleRegistry().load([dir]);
    expect(registry.names()).toEqual(["good"]);
    expect(registry.problems).toHaveLength(2);
    expect(registry.problems[0]).toMatch(new RegExp(`^${join(dir, "broken.ts")}: could not be imported: \\S`));
    expect(registry.problems[0]).not.toContain("\n");
    expect(registry.problems[0]).not.toMatch(/\x1b/); // no colour codes
    expect(registry.problems[1]).toBe(`${join(dir, "not_a_module.ts")}: default export is not a module (export default defineModule({...}))`);
    expect(() => registry.get("broken")).toThrow(/no module named "broken" \(known: good\); files skipped: .*broken\.ts: could not be imported/);
  });

  it("fails with the file's problem when the broken file is the module asked for", async () => {
    await expect(new ModuleRegistry().load([dir], { required: ["broken"] })).rejects.toThrow(ModuleError);
    await expect(new ModuleRegistry().load([dir], { required: ["broken"] })).rejects.toThrow(`${join(dir, "broken.ts")}: could not be imported`);
    await expect(new ModuleRegistry().load([dir], { required: ["good"] })).resolves.toBeInstanceOf(ModuleRegistry);
  });

  it("[modules.x] keys reach the module as written and in camelCase", async () => {
    const registry = await new ModuleRegistry({ good: { base_url: "http://b.test/", max_depth: 2 } }).load([join(dir, "good.ts")]);
    expect(registry.settings("good")).toMatchObject({ base_url: "http://b.test/", baseUrl: "http://b.test/", max_depth: 2, maxDepth: 2 });
  });
});

describe("CLI", () => {
  it("a broken module asked for is one clear line with its path, no stack trace", async () => {
    const cfg = await writeConfig(`[crawler]\nmodule_paths = [${JSON.stringify(dir)}]\n`);
    const r = await runCli(["run-standalone", "--config", cfg, "--module", "broken"]);
    expect(r.code).toBe(1);
    const lines = r.out.trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(new RegExp(`^run-standalone: ${join(dir, "broken.ts")}: could not be imported: `));
  }, 60_000);
});
