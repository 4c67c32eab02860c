// tests/helpers/worker-process.ts: real `start-worker` processes (Node via tsx, or Deno) for
// distributed tests, with their config written to a temp file.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const TSX = join(ROOT, "node_modules/.bin/tsx");
const DENO = join(ROOT, "node_modules/deno/deno");

export async function writeConfig(toml: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "mocra-worker-"));
  const file = join(dir, "config.toml");
  await writeFile(file, toml);
  return file;
}

export interface WorkerProcess {
  child: ChildProcess;
  output(): string;
  /** resolves with the exit code */
  exited: Promise<number | null>;
}

/** Starts `start-worker` and resolves once it has joined the crawl. */
export async function startWorker(configFile: string, options: { runtime?: "node" | "deno"; roles?: string } = {}): Promise<WorkerProcess> {
  const args = ["src/cli.ts", "start-worker", "--config", configFile, ...(options.roles ? ["--roles", options.roles] : [])];
  const child =
    options.runtime === "deno"
      ? spawn(DENO, ["run", "-A", ...args], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] })
      : spawn(TSX, args, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  const deadline = Date.now() + 30_000;
  while (!out.includes("joined")) {
    if (child.exitCode !== null) throw new Error(`worker exited early (${child.exitCode}):\n${out}`);
    if (Date.now() > deadline) throw new Error(`worker did not join within 30 s:\n${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return { child, output: () => out, exited };
}

/** Runs a CLI command to completion; resolves with its exit code and output. */
export function runCli(args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(TSX, ["src/cli.ts", ...args], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
    child.on("exit", (code) => resolve({ code, out }));
  });
}

export async function waitFor(what: string, cond: () => Promise<boolean>, timeoutMs = 60_000, everyMs = 200): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
