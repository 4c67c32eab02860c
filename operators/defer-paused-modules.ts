import { map, type OperatorFunction } from "rxjs";
import type { PauseGate } from "../src/control/pause.ts";
import { failed, type Job } from "./job.ts";

/** The modules a queue message is for: a Request's or Response's module, a task's list. */
function modulesOf(payload: unknown): readonly string[] | undefined {
  const p = payload as { module?: unknown; accountTask?: { module?: unknown } };
  const m = p.module ?? p.accountTask?.module;
  if (typeof m === "string") return [m];
  return Array.isArray(m) && m.length > 0 ? (m as string[]) : undefined;
}

/**
 * Per-module pause: a message whose modules are all paused is re-queued after `delayMs` as a
 * deferral (not a failed attempt) instead of being worked on. One local flag check per message.
 */
export function deferPausedModules<T>(gate: PauseGate, delayMs = 5000): OperatorFunction<Job<T>, Job<T>> {
  return map((job: Job<T>): Job<T> => {
    if (!job.ok) return job;
    const modules = modulesOf(job.message.payload);
    if (!modules || !modules.every((m) => gate.isModulePaused(m))) return job;
    return failed(job.message, { stage: "pause", reason: `module ${modules.join(",")} paused`, retryable: true, requeue: true, retryAfterMs: delayMs });
  });
}
