// tests/helpers/nats-server.ts: a private nats-server with JetStream (file store in a temp dir)
// per test file, on a free port, that a test can stop and start again (same port, same store).
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, connect as tcpConnect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { defaultConfig } from "../../src/config/index.ts";
import type { Config } from "../../src/config/index.ts";
import { REDIS_HOST, REDIS_PORT, uniqueName } from "./redis.ts";

const BINARIES = ["/usr/sbin/nats-server", "/usr/bin/nats-server", "/usr/local/bin/nats-server"];

export function natsServerBinary(): string {
  const found = BINARIES.find((b) => existsSync(b));
  if (!found) throw new Error("nats-server is not installed (apt-get install -y nats-server; .ci/run does it)");
  return found;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

function reachable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = tcpConnect({ host: "127.0.0.1", port });
    sock.once("connect", () => {
      sock.destroy();
      resolve(true);
    });
    sock.once("error", () => resolve(false));
  });
}

export interface NatsServer {
  port: number;
  url: string;
  storeDir: string;
  /** SIGTERM (or SIGKILL with `hard`) and wait for the exit */
  stop(hard?: boolean): Promise<void>;
  /** starts it again on the same port and store */
  start(): Promise<void>;
  /** stop, and delete the store */
  dispose(): Promise<void>;
}

export async function startNatsServer(): Promise<NatsServer> {
  const bin = natsServerBinary();
  const port = await freePort();
  const storeDir = await mkdtemp(join(tmpdir(), "mocra-nats-"));
  let child: ChildProcess | undefined;
  let log = "";
  const start = async () => {
    log = "";
    child = spawn(bin, ["-js", "-a", "127.0.0.1", "-p", String(port), "-sd", storeDir], { stdio: ["ignore", "pipe", "pipe"] });
    child.stdout!.on("data", (d: Buffer) => (log += d.toString()));
    child.stderr!.on("data", (d: Buffer) => (log += d.toString()));
    const deadline = Date.now() + 20_000;
    while (!(log.includes("Server is ready") && (await reachable(port)))) {
      if (child.exitCode !== null) throw new Error(`nats-server exited (${child.exitCode}):\n${log}`);
      if (Date.now() > deadline) throw new Error(`nats-server not ready within 20 s:\n${log}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const stop = async (hard = false) => {
    const c = child;
    if (!c || c.exitCode !== null) return;
    const exited = new Promise<void>((r) => c.once("exit", () => r()));
    c.kill(hard ? "SIGKILL" : "SIGTERM");
    await exited;
  };
  await start();
  return {
    port,
    url: `nats://127.0.0.1:${port}`,
    storeDir,
    stop,
    start,
    dispose: async () => {
      await stop(true);
      await rm(storeDir, { recursive: true, force: true });
    },
  };
}

/** A config under a fresh namespace with the queues on `nats` and coordination on the test Redis. */
export function natsTestConfig(nats: NatsServer, patch: (c: Config) => void = () => {}): Config {
  const c = defaultConfig();
  c.name = uniqueName();
  c.channelConfig.redis.redisHost = REDIS_HOST;
  c.channelConfig.redis.redisPort = REDIS_PORT;
  c.channelConfig.redis.connectTimeoutMs = 2000;
  c.channelConfig.nats = { url: nats.url, username: "", password: "", token: "", ackWaitMs: 30_000, connectTimeoutMs: 2000, reconnectBudgetSecs: 60 };
  patch(c);
  return c;
}
