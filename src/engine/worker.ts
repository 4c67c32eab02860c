import type { Subscription } from "rxjs";
import { uuidv4 } from "../model/index.ts";
import { type FlowDeps, type Role, workerFlows } from "./flows.ts";

/**
 * One worker: the flows of its roles over one queue. stop() stops reading new messages, lets
 * the messages in flight finish (each is acked, retried or dead-lettered), and resolves when
 * they are done or the timeout has passed (what is still un-acked then is re-delivered later;
 * run() settles then too, so a stop always ends).
 */
export class Worker {
  readonly id: string = uuidv4();
  private readonly controller = new AbortController();
  private subscription: Subscription | undefined;
  private finished: Promise<void> | undefined;
  private abandon: (() => void) | undefined;

  constructor(
    private readonly deps: FlowDeps,
    readonly roles: readonly Role[],
  ) {}

  /** Starts the flows; the promise resolves when they have all completed after stop(). */
  run(): Promise<void> {
    if (this.finished) return this.finished;
    this.deps.events.emit({ type: "worker_started", workerId: this.id, roles: [...this.roles] });
    this.finished = new Promise<void>((resolve, reject) => {
      this.abandon = resolve;
      this.subscription = workerFlows(this.deps, this.roles, this.controller.signal).subscribe({
        error: reject,
        complete: resolve,
      });
    }).finally(() => this.deps.events.emit({ type: "worker_stopped", workerId: this.id }));
    return this.finished;
  }

  get stopping(): boolean {
    return this.controller.signal.aborted;
  }

  /** "timeout" if in-flight work was abandoned (un-acked, for re-delivery) after `timeoutMs`. */
  async stop(reason: string, timeoutMs: number): Promise<"done" | "timeout"> {
    if (!this.controller.signal.aborted) {
      this.deps.events.emit({ type: "worker_stopping", workerId: this.id, reason });
      this.controller.abort();
    }
    if (!this.finished) return "done";
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), timeoutMs)));
    const outcome = await Promise.race([this.finished.then(() => "done" as const), timedOut]);
    clearTimeout(timer);
    if (outcome === "timeout") {
      this.deps.events.emit({ type: "warning", message: `stop: in-flight work did not finish within ${timeoutMs} ms; it will be re-delivered` });
      this.subscription?.unsubscribe();
      this.abandon?.();
    }
    return outcome;
  }
}
