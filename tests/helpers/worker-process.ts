// tests/helpers/worker-process.ts: real `start-worker` processes (Node via tsx, or Deno) for
// distributed tests, with their config written to a temp file.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { REDIS_HOST, REDIS_PORT } from "./redis.ts";

export const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const TSX = join(ROOT, "node_modules/.bin/tsx");
const DENO = join(ROOT, "node_modules/deno/deno");

/**
 * Writes a worker's config.toml to a temp dir. A config that names no `redis_port` is pointed
 * at the test run's Redis (the one tests/setup/redis.ts found or started), so worker processes
 * and the test talk to the same server.
 */
export async function writeConfig(toml: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "mocra-worker-"));
  const file = join(dir, "config.toml");
  await writeFile(file, withTestRedis(toml));
  return file;
}

/** `toml` with the test Redis's host and port under `[channel_config.redis]`, unless it sets a port. */
export function withTestRedis(toml: string): string {
  if (/^\s*redis_port\s*=/m.test(toml)) return toml;
  const host = /^\s*redis_host\s*=/m.test(toml) ? "" : `redis_host = ${JSON.stringify(REDIS_HOST)}\n`;
  const address = `${host}redis_port = ${REDIS_PORT}\n`;
  const header = /^\[channel_config\.redis\][^\n]*\n?/m.exec(toml);
  if (!header) return `${toml}${toml.endsWith("\n") || toml === "" ? "" : "\n"}[channel_config.redis]\n${address}`;
  const at = header.index + header[0].length;
  return `${toml.slice(0, at)}${header[0].endsWith("\n") ? "" : "\n"}${address}${toml.slice(at)}`;
}

export interface WorkerProcess {
  child: ChildProcess;
  output(): string;
  /** resolves with the exit code */
  exited: Promise<number | null>;
}

/**
 * Starts `script args…` from the project root on Node (tsx) or Deno and resolves once its output
 * contains `ready` (60 s: tsx or deno start-up on a loaded 2-core machine).
 */
export async function startProcess(script: string, args: string[], options: { runtime?: "node" | "deno"; ready: string }): Promise<WorkerProcess> {
  const child =
    options.runtime === "deno"
      ? spawn(DENO, ["run", "-A", script, ...args], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] })
      : // node itself with tsx's loader, not the tsx CLI: that wraps node in a second process, and
        // a SIGKILL meant for the worker would kill only the wrapper and leave the worker running
        spawn(process.execPath, ["--import", "tsx", script, ...args], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  const deadline = Date.now() + 60_000;
  while (!out.includes(options.ready)) {
    if (child.exitCode !== null) throw new Error(`${script} exited early (${child.exitCode}):\n${out}`);
    if (Date.now() > deadline) throw new Error(`${script} did not print "${options.ready}" within 60 s:\n${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return { child, output: () => out, exited };
}

/** Starts `start-worker` and resolves once it has joined the crawl. */
export function startWorker(configFile: string, options: { runtime?: "node" | "deno"; roles?: string } = {}): Promise<WorkerProcess> {
  const args = ["start-worker", "--config", configFile, ...(options.roles ? ["--roles", options.roles] : [])];
  return startProcess("src/cli.ts", args, { runtime: options.runtime, ready: "joined" });
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

/**
 * The kill -9 scenario of the distributed tests (Redis and NATS alike): once a quarter of `total`
 * items are stored, `workers[0]` is killed with SIGKILL; resolves once the others have stored all
 * `total` and the queue is idle. The caller checks what was stored.
 */
export async function killFirstWorkerMidCrawl(
  workers: readonly WorkerProcess[],
  total: number,
  storedItems: () => Promise<{ total: number }>,
  idle: () => Promise<boolean>,
): Promise<void> {
  await waitFor("a quarter of the items", async () => (await storedItems()).total > total / 4, 60_000, 50);
  workers[0].child.kill("SIGKILL");
  await waitFor(`${total} items`, async () => (await storedItems()).total >= total, 90_000);
  await waitFor("an idle queue", idle, 30_000);
}

/** A worker config crawling the demo shop at `shopUrl` under `name`, items in the Redis sink, reclaiming fast (1.5 s). */
export function shopWorkerToml(name: string, shopUrl: string, taskConcurrency = 8): string {
  return `name = "${name}"
[crawler]
task_concurrency = ${taskConcurrency}
shutdown_timeout_secs = 10
progress_interval_secs = 1
[output]
sink = "redis"
[channel_config.redis]
claim_min_idle = 1500
claim_interval = 500
[modules.demo_shop]
start_url = "${shopUrl}/list/0"
`;
}
