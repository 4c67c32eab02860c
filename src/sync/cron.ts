// src/sync/cron.ts: cron schedules. Every worker runs the scheduler; only the leader submits.
// A tick's task is published with the dedup key `cron:<module>:<tick ms>`, whose check and the
// XADD are one Lua step (publish.lua), so a tick is submitted exactly once across the fleet even
// when a failover makes two leaders try it. Progress per schedule (`<name>:cron:<module>:last`)
// tells a new leader which ticks it missed: those within misfire_tolerance_secs are submitted
// late, older ones are skipped with an event.
import { createHash } from "node:crypto";
import { Cron } from "croner";
import type { Redis } from "ioredis";
import { type Config, ConfigError, DEFAULT_CONFIG_FILE } from "../config/index.ts";
import type { EventBus } from "../events/bus.ts";
import { taskModel, type Uuid } from "../model/index.ts";
import type { Queue } from "../queue/queue.ts";
import type { Leadership } from "./leader.ts";

export interface Schedule {
  module: string;
  expression: string;
  cron: Cron;
}

/**
 * Parses a cron expression as mocra's `cron` crate reads it: `sec min hour day month weekday
 * [year]` (5 fields = no seconds), names (MON, JAN), `?`, `L`, `#`, and weekdays 1-7 = SUN-SAT
 * (the crate's Quartz numbering); day-of-month and weekday must both match, as in the crate.
 * Times are UTC, as mocra schedules them. Five fields (no seconds) are accepted too.
 */
export function parseCron(expression: string): Cron {
  return new Cron(expression, { paused: true, timezone: "UTC", alternativeWeekdays: true, domAndDow: true });
}


/**
 * The run id of a tick: a UUID v7 whose timestamp is the tick and whose other bits hash the
 * crawl, module and tick, so every leader makes the same task for the same tick.
 */
export function tickRunId(name: string, module: string, tick: number): Uuid {
  const h = createHash("sha256").update(`${name}\u0000${module}\u0000${tick}`).digest();
  const ms = tick.toString(16).padStart(12, "0").slice(-12);
  const rand = h.toString("hex");
  const variant = ((parseInt(rand.slice(3, 4), 16) & 0x3) | 0x8).toString(16);
  return `${ms.slice(0, 8)}-${ms.slice(8, 12)}-7${rand.slice(0, 3)}-${variant}${rand.slice(4, 7)}-${rand.slice(7, 19)}`;
}

/** The tick a scheduled task was made for (from its run id). */
export function tickOfRunId(runId: Uuid): number {
  return parseInt(runId.replace(/-/g, "").slice(0, 12), 16);
}

/** The last tick handled per schedule. */
export interface TickProgress {
  get(module: string): Promise<number | undefined>;
  /** moves forward only */
  advance(module: string, tick: number): Promise<void>;
  /** sets the start point if there is none yet; returns the point in force */
  init(module: string, tick: number): Promise<number>;
}

export class MemoryTickProgress implements TickProgress {
  private readonly last = new Map<string, number>();
  async get(module: string): Promise<number | undefined> {
    return this.last.get(module);
  }
  async advance(module: string, tick: number): Promise<void> {
    if (tick > (this.last.get(module) ?? -Infinity)) this.last.set(module, tick);
  }
  async init(module: string, tick: number): Promise<number> {
    if (!this.last.has(module)) this.last.set(module, tick);
    return this.last.get(module)!;
  }
}

/** `<name>:cron:<module>:last` in Redis (one small key per schedule, kept 30 days after its last tick). */
export class RedisTickProgress implements TickProgress {
  private static readonly TTL_SECS = 30 * 86_400;
  constructor(
    private readonly redis: Redis,
    private readonly name: string,
  ) {}
  private key(module: string): string {
    return `${this.name}:cron:${module}:last`;
  }
  async get(module: string): Promise<number | undefined> {
    const v = await this.redis.get(this.key(module));
    return v === null ? undefined : Number(v);
  }
  async advance(module: string, tick: number): Promise<void> {
    // a plain SET: the tick claims themselves are the dedup keys; this only tells a new leader where to resume
    const cur = await this.get(module);
    if (cur === undefined || tick > cur) await this.redis.set(this.key(module), String(tick), "EX", RedisTickProgress.TTL_SECS);
  }
  async init(module: string, tick: number): Promise<number> {
    await this.redis.set(this.key(module), String(tick), "EX", RedisTickProgress.TTL_SECS, "NX");
    return (await this.get(module)) ?? tick;
  }
}

export interface CronSchedulerOptions {
  name: string;
  schedules: readonly Schedule[];
  queue: Queue;
  leadership: Leadership;
  progress: TickProgress;
  misfireToleranceMs: number;
  /** schedules handled at once when ticks are due */
  concurrency: number;
  events?: EventBus;
}

/** Missed ticks are counted up to this many when skipped (an event reports the range). */
const MAX_TICKS_PER_ROUND = 1000;

export class CronScheduler {
  private timer: ReturnType<typeof setTimeout> | undefined;
  private stopped = false;
  private running: Promise<void> = Promise.resolve();
  private unsubscribe: () => void = () => {};

  constructor(private readonly o: CronSchedulerOptions) {}

  start(): this {
    if (this.o.schedules.length === 0) return this;
    this.unsubscribe = this.o.leadership.onChange((leader) => leader && this.wake(0));
    this.wake(0);
    return this;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.unsubscribe();
    await this.running;
  }

  private wake(ms: number): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.running = this.running.then(() => this.round()).catch((err: unknown) => {
        this.o.events?.emit({ type: "warning", message: `scheduler: ${err instanceof Error ? err.message : String(err)}` });
      });
      void this.running.then(() => this.wake(this.msToNextTick()));
    }, Math.max(0, ms));
  }

  /** ms until the next tick of any schedule (at most 60 s, so a clock jump is noticed). */
  private msToNextTick(): number {
    const now = Date.now();
    let next = now + 60_000;
    for (const s of this.o.schedules) {
      const t = s.cron.nextRun(new Date(now))?.getTime();
      if (t !== undefined && t < next) next = t;
    }
    return next - now + 1;
  }

  private async round(): Promise<void> {
    if (this.stopped || !this.o.leadership.isLeader) return;
    const queue = [...this.o.schedules];
    const workers = Array.from({ length: Math.min(this.o.concurrency, queue.length) }, async () => {
      for (let s = queue.shift(); s; s = queue.shift()) await this.catchUp(s);
    });
    await Promise.all(workers);
  }

  /** Submits the due ticks of one schedule (late ones within the tolerance), skips older ones. */
  private async catchUp(s: Schedule): Promise<void> {
    const now = Date.now();
    const last = await this.o.progress.init(s.module, now);
    const skipped: number[] = [];
    let t = s.cron.nextRun(new Date(last))?.getTime();
    let handled: number | undefined;
    for (let n = 0; t !== undefined && t <= now && n < MAX_TICKS_PER_ROUND; n++) {
      if (!this.o.leadership.isLeader) break;
      if (now - t > this.o.misfireToleranceMs) skipped.push(t);
      else await this.submit(s.module, t, now - t);
      handled = t;
      t = s.cron.nextRun(new Date(t))?.getTime();
    }
    if (skipped.length > 0) {
      this.o.events?.emit({
        type: "schedule_skipped",
        module: s.module,
        ticks: skipped.length,
        from: skipped[0],
        to: skipped[skipped.length - 1],
        reason: `missed by more than misfire_tolerance_secs (${this.o.misfireToleranceMs / 1000} s)`,
      });
    }
    if (handled !== undefined) await this.o.progress.advance(s.module, handled);
  }

  private async submit(module: string, tick: number, lateMs: number): Promise<void> {
    const runId = tickRunId(this.o.name, module, tick);
    const { accepted } = await this.o.queue.publish("task", [{ message: taskModel({ module: [module], runId }), dedupKey: `cron:${module}:${tick}` }]);
    // accepted 0: another leader submitted this tick already (the dedup key says so)
    if (accepted > 0) this.o.events?.emit({ type: "schedule_submitted", module, tick, runId, lateMs });
  }
}

/**
 * The tick claims are dedup keys: they must outlive the misfire tolerance, so a tick cannot be
 * submitted twice while a new leader may still make it up. Throws a configuration error if not.
 */
export function checkScheduleConfig(config: Config, schedules: readonly Schedule[]): void {
  if (schedules.length === 0) return;
  const { dedupTtlSecs } = config.crawler;
  const tolerance = config.scheduler.misfireToleranceSecs;
  if (dedupTtlSecs < tolerance + 60) {
    const modules = schedules.map((s) => s.module).join(", ");
    throw new ConfigError(DEFAULT_CONFIG_FILE, [
      {
        file: DEFAULT_CONFIG_FILE,
        message: `crawler.dedup_ttl_secs (${dedupTtlSecs}) must be at least scheduler.misfire_tolerance_secs + 60 (${tolerance + 60}) when modules have cron schedules (${modules}): each tick is claimed with a dedup key`,
      },
    ]);
  }
}
