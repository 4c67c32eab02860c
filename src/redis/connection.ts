// src/queue/redis/connection.ts: opening the queue's Redis connections with a bounded wait,
// and the connection options that make an outage a pause rather than a loss.

import { Redis, type RedisOptions } from "ioredis";
import type { RedisConnectionConfig } from "../config/schema.ts";
import { restoreFastStringPrototype } from "../runtime/index.ts";
import { ServiceError } from "../runtime/service-error.ts";

// ioredis 6 subclasses String at load, which slows every string scan in the process by ~1.8x
// (htmlparser2's tokenizer included) until String.prototype is made fast again: see the function.
restoreFastStringPrototype();

/** Reconnect back-off: 50 ms doubling to a cap of 2 s, plus up to 100 ms of jitter. */
export const RECONNECT_CAP_MS = 2000;

export function reconnectDelay(times: number): number {
  return Math.min(50 * 2 ** Math.max(0, times - 1), RECONNECT_CAP_MS) + Math.floor(Math.random() * 100);
}

export function describeEndpoint(c: RedisConnectionConfig): string {
  return `${c.redisHost}:${c.redisPort}${c.redisDb ? `/${c.redisDb}` : ""}`;
}

export type ConnectionRole = "command" | "blocking";

/**
 * ioredis options for one queue connection.
 * - command: commands issued while disconnected wait (offline queue, no retry limit) and the
 *   ones in flight are re-sent after a reconnect; the queue's own budget (reconnect_budget_secs)
 *   decides when waiting becomes fatal. Every write the queue sends is safe to re-send: the
 *   scripts are guarded by XACK / SET NX, and XACK is idempotent.
 * - blocking: XREADGROUP BLOCK only. Nothing is queued or re-sent: a read that loses its
 *   connection fails at once and the caller returns [] (entries it may have taken stay pending
 *   and are reclaimed). A client-side timer guards against a silent half-open socket.
 */
export function connectionOptions(c: RedisConnectionConfig, role: ConnectionRole, connectTimeoutMs: number, name: string): RedisOptions {
  const base: RedisOptions = {
    host: c.redisHost,
    port: c.redisPort,
    db: c.redisDb,
    username: c.redisUsername || undefined,
    password: c.redisPassword || undefined,
    connectionName: name,
    connectTimeout: connectTimeoutMs,
    protocol: 2, // RESP2 replies: the shapes the scripts and parsers below expect
    lazyConnect: true,
    retryStrategy: reconnectDelay,
    maxRetriesPerRequest: null,
    ...(c.tls ? { tls: { servername: c.redisHost } } : {}), // mocra's `tls`: system CAs, SNI = host
  };
  if (role === "command") return { ...base, enableOfflineQueue: true, autoResendUnfulfilledCommands: true };
  return {
    ...base,
    enableOfflineQueue: false,
    autoResendUnfulfilledCommands: false,
    blockingTimeout: 300_000,
    blockingTimeoutGrace: 2000,
  };
}

/** The last error a connection reported, kept for messages ("what failed"). */
const lastErrors = new WeakMap<Redis, Error>();

export function lastError(conn: Redis): Error | undefined {
  return lastErrors.get(conn);
}

/**
 * Opens a connection and waits until it is ready, at most `timeoutMs` (ioredis keeps retrying
 * meanwhile, so a Redis that is still starting is fine). Fails with a message naming the
 * endpoint and the last error.
 */
export async function openConnection(
  c: RedisConnectionConfig,
  role: ConnectionRole,
  timeoutMs: number,
  name: string,
): Promise<Redis> {
  const conn = new Redis(connectionOptions(c, role, timeoutMs, name));
  // an 'error' listener is required (ioredis prints unhandled ones); keep the last for messages
  conn.on("error", (err: Error) => lastErrors.set(conn, err));
  try {
    await waitReady(conn, timeoutMs, () => conn.connect().catch(() => {}));
  } catch {
    conn.disconnect();
    const why = lastErrors.get(conn)?.message ?? "no reply";
    throw new ServiceError(`cannot connect to Redis at ${describeEndpoint(c)} within ${timeoutMs} ms (${role} connection): ${why}`);
  }
  return conn;
}

/** Resolves when the connection is ready; rejects after `timeoutMs`. */
export function waitReady(conn: Redis, timeoutMs: number, start?: () => void): Promise<void> {
  if (conn.status === "ready") return Promise.resolve();
  return new Promise((resolve, reject) => {
    const onReady = () => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      conn.off("ready", onReady);
      reject(new Error("timeout"));
    }, timeoutMs);
    conn.once("ready", onReady);
    start?.();
  });
}

/** A connection-level failure (socket closed, reset, not writable) rather than a Redis error reply. */
export function isConnectionError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (err.name === "ReplyError") return false;
  return true;
}

export function isReplyError(err: unknown, code?: string): boolean {
  return err instanceof Error && err.name === "ReplyError" && (code === undefined || err.message.startsWith(code));
}
