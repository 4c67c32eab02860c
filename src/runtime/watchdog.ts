// The watchdog: a thread that sees the event loop blocked by module code (a parse that loops on
// the CPU) past its deadline, records the delivery as poisonous where the queue keeps attempts,
// and ends the process (a supervisor restarts it: src/commands/supervise.ts). Module code runs on
// the main thread; the thread only reads a SharedArrayBuffer the main thread writes, so a page
// costs a few stores (measured in docs/module-faults.md). Works the same on Node and Deno
// (node:worker_threads with an eval'd script).
import { Worker } from "node:worker_threads";

/** Where the watchdog records a delivery that blocked the process. */
export type PoisonStore =
  /** a line `{"key": ..., "reason": ...}` appended (and fsynced) to this file (standalone frontier) */
  | { kind: "file"; path: string }
  /**
   * Redis: HSET `<stream key>:poison` `<entry id>` `<reason>` (record = "<stream key> <entry id>"),
   * read by claim.lua when the entry's delivery budget is spent
   */
  | { kind: "redis"; host: string; port: number; db: number; username: string; password: string; ttlSecs: number };

export interface WatchdogOptions {
  store: PoisonStore;
  /**
   * the process is ended at most this long after it blocked, whatever the call's deadline
   * (shutdown_timeout_secs; a worker also stays below claim_min_idle, after which others claim its entries)
   */
  maxBlockSecs?: number;
  /** how often the thread looks (default 200 ms) */
  checkEveryMs?: number;
}

const SLOTS = 128;
const SLOT_BYTES = 512;
const HEAD = 4; // int32: heartbeat
const TEXT = 12; // slot: int32 state, int32 timeout ms, int32 text length, then text
const FREE = 0;
const AWAITING = 1;
const RUNNING = 2;

/** The thread's script (plain JS: it runs before and apart from any TypeScript loader). */
const THREAD = `
(async () => {
  const { parentPort } = await import("node:worker_threads");
  const fs = await import("node:fs");
  const net = await import("node:net");
  const proc = (await import("node:process")).default;
  const init = await new Promise((r) => parentPort.once("message", r));
  const { sab, store, maxBlockMs, checkEveryMs } = init;
  const i32 = new Int32Array(sab);
  const bytes = new Uint8Array(sab);
  const decoder = new TextDecoder();
  let lastBeat = Atomics.load(i32, 0);
  let lastBeatAt = Date.now();
  let firing = false;
  const slotsOf = () => {
    const running = [], awaiting = [];
    for (let s = 0; s < ${SLOTS}; s++) {
      const base = ${HEAD} + s * ${SLOT_BYTES};
      const state = Atomics.load(i32, base / 4);
      if (state === ${FREE}) continue;
      const len = i32[base / 4 + 2];
      const text = decoder.decode(bytes.slice(base + ${TEXT}, base + ${TEXT} + len));
      const nl = text.indexOf("\\n");
      const slot = { record: text.slice(0, nl), label: text.slice(nl + 1), timeoutMs: i32[base / 4 + 1] };
      (state === ${RUNNING} ? running : awaiting).push(slot);
    }
    return running.length > 0 ? running : awaiting;
  };
  const resp = (args) => "*" + args.length + "\\r\\n" + args.map((a) => { const b = new TextEncoder().encode(a).length; return "$" + b + "\\r\\n" + a + "\\r\\n"; }).join("");
  const recordRedis = (culprits, reason) => new Promise((resolve) => {
    const cmds = [];
    if (store.password) cmds.push(store.username ? ["AUTH", store.username, store.password] : ["AUTH", store.password]);
    if (store.db) cmds.push(["SELECT", String(store.db)]);
    for (const c of culprits) {
      const sp = c.record.lastIndexOf(" ");
      const key = c.record.slice(0, sp) + ":poison";
      cmds.push(["HSET", key, c.record.slice(sp + 1), reason(c)], ["EXPIRE", key, String(store.ttlSecs)]);
    }
    let replies = 0, buf = "";
    const sock = net.connect(store.port, store.host, () => sock.write(cmds.map(resp).join("")));
    const done = () => { clearTimeout(timer); sock.destroy(); resolve(); };
    const timer = setTimeout(done, 3000);
    sock.on("data", (d) => { buf += d.toString(); replies = (buf.match(/\\r\\n/g) || []).length; if (replies >= cmds.length) done(); });
    sock.on("error", done);
  });
  const recordFile = (culprits, reason) => {
    const fd = fs.openSync(store.path, "a");
    try {
      fs.writeSync(fd, culprits.map((c) => JSON.stringify({ key: c.record, reason: reason(c) }) + "\\n").join(""));
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  };
  setInterval(async () => {
    if (firing) return;
    const beat = Atomics.load(i32, 0);
    const now = Date.now();
    if (beat !== lastBeat) {
      lastBeat = beat;
      lastBeatAt = now;
      return;
    }
    const culprits = slotsOf();
    if (culprits.length === 0) return;
    const limit = Math.min(Math.max(...culprits.map((c) => c.timeoutMs)), maxBlockMs);
    if (now - lastBeatAt < limit) return;
    firing = true;
    const secs = Math.round((now - lastBeatAt) / 100) / 10;
    const reason = (c) => "parse timed out after " + Math.min(c.timeoutMs, maxBlockMs) / 1000 + " s: it blocked the process (" + secs + " s without a turn of the event loop: a loop in module code?)" + (culprits.length > 1 ? " [one of " + culprits.length + " calls in flight]" : "");
    // a delivery without a record ("": a queue with nowhere to keep one, e.g. JetStream) is not
    // recorded; the process is still ended and the queue's re-delivery budget takes over
    const recorded = culprits.filter((c) => c.record !== "");
    try {
      if (recorded.length === 0) {
        // nothing to write
      } else if (store.kind === "file") recordFile(recorded, reason);
      else await recordRedis(recorded, reason);
    } catch (err) {
      fs.writeSync(2, "watchdog: could not record the blocking delivery: " + err + "\\n");
    }
    const labels = culprits.slice(0, 3).map((c) => c.label).join("; ") + (culprits.length > 3 ? " and " + (culprits.length - 3) + " more calls in flight" : "");
    fs.writeSync(2, "watchdog: " + labels + " blocked the process for " + secs + " s; ending it (the delivery is counted and retried or dead-lettered by the next run)\\n");
    proc.kill(proc.pid, "SIGKILL");
  }, checkEveryMs);
})();
`;

/** The main thread's side: marks module calls in a shared buffer the thread reads. */
export class Watchdog {
  private readonly i32: Int32Array;
  private readonly bytes: Uint8Array;
  private readonly free: number[] = [];
  private readonly encoder = new TextEncoder();
  private readonly beat: ReturnType<typeof setInterval>;
  private readonly thread: Worker;

  private constructor(options: WatchdogOptions) {
    const sab = new SharedArrayBuffer(HEAD + SLOTS * SLOT_BYTES);
    this.i32 = new Int32Array(sab);
    this.bytes = new Uint8Array(sab);
    for (let s = SLOTS - 1; s >= 0; s--) this.free.push(s);
    const checkEveryMs = options.checkEveryMs ?? 200;
    // the heartbeat: a turn of the event loop at least this often while it is not blocked
    this.beat = setInterval(() => Atomics.add(this.i32, 0, 1), Math.max(20, Math.floor(checkEveryMs / 2)));
    unref(this.beat);
    this.thread = new Worker(THREAD, { eval: true });
    this.thread.postMessage({ sab, store: options.store, maxBlockMs: (options.maxBlockSecs ?? Infinity) * 1000 || Infinity, checkEveryMs });
    this.thread.unref();
  }

  static start(options: WatchdogOptions): Watchdog {
    return new Watchdog(options);
  }

  /** -1 when every slot is taken (more than 128 module calls at once): that call is not watched. */
  enter(record: string, label: string, timeoutSecs: number): number {
    const slot = this.free.pop();
    if (slot === undefined) return -1;
    const base = HEAD + slot * SLOT_BYTES;
    const room = this.bytes.subarray(base + TEXT, base + SLOT_BYTES);
    const { written } = this.encoder.encodeInto(`${record}\n${label}`, room);
    const w = base / 4;
    this.i32[w + 1] = Math.min(2 ** 31 - 1, Math.round(timeoutSecs * 1000));
    this.i32[w + 2] = written;
    Atomics.store(this.i32, w, RUNNING);
    return slot;
  }

  returned(slot: number): void {
    if (slot >= 0) Atomics.store(this.i32, (HEAD + slot * SLOT_BYTES) / 4, AWAITING);
  }

  leave(slot: number): void {
    if (slot < 0) return;
    Atomics.store(this.i32, (HEAD + slot * SLOT_BYTES) / 4, FREE);
    this.free.push(slot);
  }

  stop(): Promise<void> {
    clearInterval(this.beat);
    return this.thread.terminate().then(() => undefined);
  }
}

function unref(timer: ReturnType<typeof setInterval>): void {
  (timer as { unref?: () => void }).unref?.();
}
