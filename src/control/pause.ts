// src/control/pause.ts: pause / resume, for the whole crawl or one module.
//
// Readers (fromQueue, the module check) look at a local copy of the flags: no Redis call per
// message. In Redis the flags are `<name>:engine:pause` (mocra's name for it) and
// `<name>:engine:pause:modules`; every change is also published on `<name>:engine:control`. A
// worker's copy is re-read on a timer (one GET + SMEMBERS, off the hot path), and at once on
// that message when it is given a subscriber connection.

import type { Redis } from "ioredis";
import type { EventBus } from "../events/bus.ts";
import { ScriptSet } from "../redis/scripts.ts";

/** What a reader needs: the current flags, and a way to wait for a resume. */
export interface PauseGate {
  /** true while the whole crawl is paused */
  readonly paused: boolean;
  /** true while this module is paused on its own (the whole crawl's pause is `paused`) */
  isModulePaused(module: string): boolean;
  /** resolves at the next change of the flags (a resume, or another pause) */
  changed(): Promise<void>;
}

export interface PauseState {
  all: boolean;
  modules: string[];
}

/** Changing the flags: the API's /control routes and the CLI's pause/resume. */
export interface PauseControl {
  pause(module?: string): Promise<void>;
  resume(module?: string): Promise<void>;
  state(): Promise<PauseState>;
}

/** The flags of one process (run-standalone, custom chains): gate and control at once. */
export class MemoryPauseFlag implements PauseGate, PauseControl {
  private all = false;
  private readonly modules = new Set<string>();
  private waiters: (() => void)[] = [];

  constructor(private readonly events?: EventBus) {}

  get paused(): boolean {
    return this.all;
  }

  isModulePaused(module: string): boolean {
    return this.modules.size > 0 && this.modules.has(module);
  }

  changed(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Sets the flags (reporting what changed as events) and wakes every waiter. */
  apply(next: PauseState): void {
    const before = this.snapshot();
    this.all = next.all;
    this.modules.clear();
    for (const m of next.modules) this.modules.add(m);
    if (this.events) {
      if (before.all !== next.all) this.events.emit({ type: next.all ? "paused" : "resumed", scope: "all" });
      for (const m of next.modules) if (!before.modules.includes(m)) this.events.emit({ type: "paused", scope: m });
      for (const m of before.modules) if (!next.modules.includes(m)) this.events.emit({ type: "resumed", scope: m });
    }
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  snapshot(): PauseState {
    return { all: this.all, modules: [...this.modules].sort() };
  }

  pause(module?: string): Promise<void> {
    const s = this.snapshot();
    this.apply(module ? { all: s.all, modules: [...s.modules, module] } : { all: true, modules: s.modules });
    return Promise.resolve();
  }

  resume(module?: string): Promise<void> {
    const s = this.snapshot();
    this.apply(module ? { all: s.all, modules: s.modules.filter((m) => m !== module) } : { all: false, modules: s.modules });
    return Promise.resolve();
  }

  state(): Promise<PauseState> {
    return Promise.resolve(this.snapshot());
  }
}

export interface PauseKeys {
  flag: string;
  modules: string;
  channel: string;
}

export function pauseKeys(name: string): PauseKeys {
  return { flag: `${name}:engine:pause`, modules: `${name}:engine:pause:modules`, channel: `${name}:engine:control` };
}

const pauseScripts = new ScriptSet("control", new URL("./", import.meta.url), { pause: "pause.lua" });

/** Reads the flags from Redis. */
export async function readPauseState(redis: Redis, keys: PauseKeys): Promise<PauseState> {
  const [flag, modules] = await Promise.all([redis.get(keys.flag), redis.smembers(keys.modules)]);
  return { all: flag !== null && flag !== "0" && flag !== "", modules: modules.sort() };
}

/** Changes the flags in Redis (for every worker of the crawl) with pause.lua. */
export class RedisPauseControl implements PauseControl {
  readonly keys: PauseKeys;

  constructor(
    private readonly redis: Redis,
    name: string,
  ) {
    this.keys = pauseKeys(name);
  }

  private run(action: "pause" | "resume", module = ""): Promise<void> {
    const { flag, modules, channel } = this.keys;
    return pauseScripts.run(this.redis, "pause", [flag, modules], [action, module, channel]).then(() => {});
  }

  pause(module?: string): Promise<void> {
    return this.run("pause", module);
  }

  resume(module?: string): Promise<void> {
    return this.run("resume", module);
  }

  state(): Promise<PauseState> {
    return readPauseState(this.redis, this.keys);
  }
}

/**
 * A worker's copy of the fleet-wide flags, re-read every `refreshMs` (default 1 s) and, with a
 * `subscriber` connection (which it then owns), on every message of the control channel.
 * As a PauseControl it writes to Redis and re-reads at once.
 */
export class RedisPauseFlag implements PauseGate, PauseControl {
  private readonly local: MemoryPauseFlag;
  private readonly control: RedisPauseControl;
  private timer: ReturnType<typeof setInterval> | undefined;

  private constructor(
    private readonly redis: Redis,
    private readonly subscriber: Redis | undefined,
    name: string,
    events: EventBus | undefined,
    private readonly onError: (err: unknown) => void,
  ) {
    this.local = new MemoryPauseFlag(events);
    this.control = new RedisPauseControl(redis, name);
  }

  /** Reads the flags once (so a worker started during a pause starts paused), then follows them. */
  static async start(
    redis: Redis,
    name: string,
    options: { subscriber?: Redis; events?: EventBus; refreshMs?: number; onError?: (err: unknown) => void } = {},
  ): Promise<RedisPauseFlag> {
    const { subscriber } = options;
    const flag = new RedisPauseFlag(redis, subscriber, name, options.events, options.onError ?? (() => {}));
    await flag.refresh();
    if (subscriber) {
      await subscriber.subscribe(flag.control.keys.channel);
      subscriber.on("message", () => void flag.refresh());
    }
    flag.timer = setInterval(() => void flag.refresh(), options.refreshMs ?? 1000);
    flag.timer.unref?.();
    return flag;
  }

  private async refresh(): Promise<void> {
    try {
      const next = await readPauseState(this.redis, this.control.keys);
      const cur = this.local.snapshot();
      if (next.all !== cur.all || next.modules.join("\n") !== cur.modules.join("\n")) this.local.apply(next);
    } catch (err) {
      this.onError(err);
    }
  }

  get paused(): boolean {
    return this.local.paused;
  }

  isModulePaused(module: string): boolean {
    return this.local.isModulePaused(module);
  }

  changed(): Promise<void> {
    return this.local.changed();
  }

  async pause(module?: string): Promise<void> {
    await this.control.pause(module);
    await this.refresh();
  }

  async resume(module?: string): Promise<void> {
    await this.control.resume(module);
    await this.refresh();
  }

  state(): Promise<PauseState> {
    return Promise.resolve(this.local.snapshot());
  }

  close(): void {
    clearInterval(this.timer);
    this.subscriber?.disconnect();
  }
}
