import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";
import { ROOT } from "./helpers/worker-process.ts";

/**
 * Whether String.prototype has fast properties in a fresh Node process after importing `module`
 * (V8's %HasFastProperties, hence the natives flag). In dictionary mode every optimised string
 * method call on a primitive is a generic call: the HTML tokenizer ran ~1.8x slower.
 */
function stringPrototypeFastAfter(module: string): boolean {
  const url = pathToFileURL(join(ROOT, module)).href;
  const script = `const fast = new Function("o", "return %HasFastProperties(o)"); await import(${JSON.stringify(url)}); console.log(JSON.stringify(fast(String.prototype)));`;
  const out = execFileSync(process.execPath, ["--allow-natives-syntax", "--import", "tsx", "--input-type=module", "-e", script], { cwd: ROOT, encoding: "utf8" });
  return JSON.parse(out.trim().split("\n").pop()!) as boolean;
}

describe("String.prototype stays fast", () => {
  it("after loading the Redis connection module (ioredis subclasses String at load)", () => {
    expect(stringPrototypeFastAfter("src/redis/connection.ts")).toBe(true);
  });

  it("after loading the start-worker command (the Redis queue, sinks and API)", () => {
    expect(stringPrototypeFastAfter("src/commands/start-worker.ts")).toBe(true);
  });

  it("after loading the whole standalone engine", () => {
    expect(stringPrototypeFastAfter("src/engine/standalone.ts")).toBe(true);
  });
});
