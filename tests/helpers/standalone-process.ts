// tests/helpers/standalone-process.ts: `run-standalone` as a real process (Node without a
// wrapper, Node through the `npx tsx` wrapper, or Deno) against a state folder in a temp dir.
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { descendants } from "../bench/common.ts";
import { ROOT } from "./worker-process.ts";

export type Launch = "node" | "npx-tsx" | "deno";

export interface StandaloneRun {
  child: ChildProcess;
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export interface StandaloneDirs {
  dir: string;
  config: string;
  output: string;
  state: string;
}

/** A temp dir with a config crawling `startUrl` with demo_shop, its output and state inside. */
export async function standaloneDirs(startUrl: string, extraToml = ""): Promise<StandaloneDirs> {
  const dir = await mkdtemp(join(tmpdir(), "mocra-resume-"));
  const config = join(dir, "config.toml");
  const output = join(dir, "out");
  const state = join(dir, "state");
  await writeFile(
    config,
    `name = "resume_test"\n[crawler]\ntask_concurrency = 8\nprogress_interval_secs = 1\n${extraToml}\n` +
      `[output]\npath = ${JSON.stringify(output)}\n[state]\ndir = ${JSON.stringify(state)}\n` +
      `[modules.demo_shop]\nstart_url = ${JSON.stringify(startUrl)}\n`,
  );
  return { dir, config, output, state };
}

export function runStandaloneProcess(dirs: StandaloneDirs, launch: Launch, extra: string[] = []): StandaloneRun {
  const args = ["src/cli.ts", "run-standalone", "--config", dirs.config, "--module", "demo_shop", ...extra];
  const stdio: ["ignore", "pipe", "pipe"] = ["ignore", "pipe", "pipe"];
  const child =
    launch === "deno"
      ? spawn(join(ROOT, "node_modules/deno/deno"), ["run", "-A", ...args], { cwd: ROOT, stdio })
      : launch === "npx-tsx"
        ? // its own process group, as a terminal's Ctrl-C reaches the wrapper and the worker together
          spawn("npx", ["tsx", ...args], { cwd: ROOT, stdio, detached: true })
        : spawn(process.execPath, ["--import", "tsx", ...args], { cwd: ROOT, stdio });
  let out = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("exit", (code, signal) => resolve({ code, signal })),
  );
  return { child, output: () => out, exited };
}

/** Resolves when `cond` holds or the process has exited (then returns false). */
export async function until(run: StandaloneRun, cond: () => boolean, timeoutMs = 60_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (run.child.exitCode !== null || run.child.signalCode !== null) return false;
    if (Date.now() > deadline) throw new Error(`timed out; output so far:\n${run.output()}`);
    await new Promise((r) => setTimeout(r, 5));
  }
  return true;
}

export async function readItems(dirs: StandaloneDirs): Promise<{ url: string }[]> {
  const text = await readFile(join(dirs.output, "demo_shop.jsonl"), "utf8").catch(() => "");
  return text
    .split("\n")
    .filter(Boolean)
    .map((line) => JSON.parse(line) as { url: string });
}

/**
 * The process running the CLI itself: `rootPid` when it is (node --import tsx src/cli.ts), else
 * the first under a wrapper chain (npx → tsx → node with tsx's loader). Under the supervisor that
 * is the supervising parent, not its crawl child.
 */
export function cliPid(rootPid: number): number | undefined {
  for (const pid of [rootPid, ...descendants(rootPid)]) {
    const cmd = (() => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
      } catch {
        return [];
      }
    })();
    if (cmd.includes("src/cli.ts") && !cmd.some((a) => a.endsWith("tsx/dist/cli.mjs") || a.endsWith("npx-cli.js"))) return pid;
  }
  return undefined;
}

export interface CliRun {
  child: ChildProcess;
  /** stdout and stderr as they came */
  output(): string;
  stdout(): string;
  exited: Promise<number | null>;
}

/** `src/cli.ts <args>` as a real Node process (with tsx's loader), its output collected. */
export function runCliProcess(args: string[]): CliRun {
  const child = spawn(process.execPath, ["--import", "tsx", "src/cli.ts", ...args], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let stdout = "";
  child.stdout!.on("data", (d: Buffer) => {
    out += d.toString();
    stdout += d.toString();
  });
  child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  return { child, output: () => out, stdout: () => stdout, exited: new Promise((r) => child.on("exit", (code) => r(code))) };
}
