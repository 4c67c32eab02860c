// Module code (start, parse, middleware) runs under a deadline: a Promise that never settles
// fails its delivery, and a call that never yields is seen by the watchdog thread
// (src/runtime/watchdog.ts), which records the delivery and ends the process.

/**
 * Where the watchdog sees which module code is running. `enter` before the call, `returned`
 * when its synchronous part is done (it may still await), `leave` once it settled or timed out.
 */
export interface ModuleGuard {
  /**
   * `record`: what to record against if this call blocks the process (the queue's poison key of
   * the delivery, see Queue.poisonKey); `label`: what the log line says.
   */
  enter(record: string, label: string, timeoutSecs: number): number;
  returned(slot: number): void;
  leave(slot: number): void;
}

/** Module code that did not settle within its deadline. */
export class ModuleTimeout extends Error {}

/** A module's own `parseTimeoutSecs` setting, else the configured default. */
export function moduleTimeoutSecs(settings: { parseTimeoutSecs?: unknown } | undefined, fallback: number): number {
  const v = settings?.parseTimeoutSecs;
  return typeof v === "number" && Number.isFinite(v) && v > 0 ? v : fallback;
}

export interface Watched {
  guard: ModuleGuard;
  record: string;
  label: string;
}

/**
 * `run()` under a deadline of `timeoutSecs`: rejects with ModuleTimeout("<what> timed out after N s")
 * when its Promise has not settled by then (the Promise itself cannot be cancelled: what it does
 * later is ignored). With `watched`, the watchdog knows the call is running meanwhile.
 */
export function underDeadline<T>(run: () => T | Promise<T>, timeoutSecs: number, what: string, watched?: Watched): Promise<T> {
  const guard = watched?.guard;
  const slot = guard ? guard.enter(watched.record, watched.label, timeoutSecs) : -1;
  let result: T | Promise<T>;
  try {
    result = run();
  } catch (err) {
    guard?.leave(slot);
    return Promise.reject(err);
  }
  guard?.returned(slot);
  if (!isPromise(result)) {
    guard?.leave(slot);
    return Promise.resolve(result);
  }
  const pending = result;
  return new Promise<T>((resolve, reject) => {
    const call: Pending = { due: performance.now() + timeoutSecs * 1000, expire: () => undefined };
    let left = false;
    // once only: after a timeout the slot may already serve another call when this one settles
    const leave = () => {
      if (!left) guard?.leave(slot);
      left = true;
      waiting.delete(call);
    };
    call.expire = () => {
      leave();
      reject(new ModuleTimeout(`${what} timed out after ${timeoutSecs} s`));
    };
    watch(call);
    pending.then(
      (value) => {
        leave();
        resolve(value);
      },
      (err: unknown) => {
        leave();
        reject(err);
      },
    );
  });
}

/**
 * Calls waiting on their deadline, swept by one timer: a timer per call (setTimeout and
 * clearTimeout) cost a page ~20 µs on a loaded 2-core machine, the sweep a Set add and delete.
 * A deadline is kept to within SWEEP_MS.
 */
interface Pending {
  due: number;
  expire: () => void;
}
const SWEEP_MS = 100;
const waiting = new Set<Pending>();
let sweeper: ReturnType<typeof setInterval> | undefined;

function watch(call: Pending): void {
  waiting.add(call);
  sweeper ??= setInterval(sweep, SWEEP_MS);
}

function sweep(): void {
  const now = performance.now();
  for (const call of waiting) if (call.due <= now) call.expire();
  if (waiting.size === 0) {
    clearInterval(sweeper);
    sweeper = undefined;
  }
}

function isPromise<T>(value: T | Promise<T>): value is Promise<T> {
  return typeof (value as { then?: unknown } | null)?.then === "function";
}
