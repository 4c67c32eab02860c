/**
 * A request's deadline: it aborts once, `ms` after it was made, with `reason()`; what
 * HttpClient hands its transport instead of an AbortSignal. Node's AbortController/AbortSignal
 * (an EventTarget) and undici's listener on it cost ~10 µs of CPU per request (an undici Agent
 * request and body read, C=64 on the demo shop: 22 µs without a signal, 33 µs with one). undici
 * also takes any EventEmitter-like object with `aborted`, `reason`, `once` and `removeListener`
 * (its util.addAbortListener), which this is; a real AbortSignal is made only for a transport
 * that needs one (`signal`: ky over fetch).
 */
export class Deadline {
  private done = false;
  private why: unknown = undefined;
  private listeners: Array<() => void> | undefined = undefined;
  private controller: AbortController | undefined = undefined;
  private readonly timer: ReturnType<typeof setTimeout>;

  constructor(ms: number, reason: () => unknown) {
    this.timer = setTimeout(() => this.abort(reason()), ms);
  }

  get aborted(): boolean {
    return this.done;
  }

  get reason(): unknown {
    return this.why;
  }

  /** Aborts now (once): listeners run, and the signal, if one was made, aborts. */
  abort(reason: unknown): void {
    if (this.done) return;
    this.done = true;
    this.why = reason;
    clearTimeout(this.timer);
    this.controller?.abort(reason);
    const listeners = this.listeners;
    this.listeners = undefined;
    if (listeners) for (const listener of listeners) listener();
  }

  /** The request is over: no abort from now on. */
  clear(): void {
    clearTimeout(this.timer);
  }

  /** An AbortSignal that aborts with this deadline (made on first use). */
  get signal(): AbortSignal {
    if (this.controller === undefined) {
      this.controller = new AbortController();
      if (this.done) this.controller.abort(this.why);
    }
    return this.controller.signal;
  }

  /** `listener` runs once on abort (EventEmitter style, as undici subscribes). */
  once(event: "abort", listener: () => void): this {
    if (event === "abort" && !this.done) (this.listeners ??= []).push(listener);
    return this;
  }

  /** Same as once(): an abort happens at most once. */
  on(event: "abort", listener: () => void): this {
    return this.once(event, listener);
  }

  removeListener(event: "abort", listener: () => void): this {
    const i = event === "abort" && this.listeners ? this.listeners.indexOf(listener) : -1;
    if (i >= 0) this.listeners!.splice(i, 1);
    return this;
  }
}
