// src/sync/leader.ts: one leader per crawl name among live workers, on mocra's key
// `<name>:leader:cron` (value: the leader's id, as mocra writes it) with a term counter beside it.
// The leader renews its lease every third of it; the others try every min(lease/10, 1 s) (mocra's
// pace), so a leader killed with kill -9 is replaced within lease + lease/10.
import type { Redis } from "ioredis";
import type { EventBus } from "../events/bus.ts";
import { syncScripts } from "./scripts.ts";

/** Who leads: what the scheduler asks before it submits. */
export interface Leadership {
  readonly isLeader: boolean;
  /** calls `fn` whenever leadership changes; returns an unsubscribe function */
  onChange(fn: (leader: boolean) => void): () => void;
}

export function leaderKey(name: string): string {
  return `${name}:leader:cron`;
}

/** The current leader as Redis holds it (for `status`). */
export async function readLeader(redis: Redis, name: string): Promise<{ id: string; term: number; leaseLeftMs: number } | null> {
  const key = leaderKey(name);
  const [[, id], [, term], [, pttl]] = (await redis.pipeline().get(key).get(`${key}:term`).pttl(key).exec()) as [unknown, string | null][];
  return id ? { id, term: Number(term ?? 0), leaseLeftMs: Math.max(0, Number(pttl)) } : null;
}

export class LeaderElector implements Leadership {
  private leading = false;
  private currentTerm = 0;
  /** until when our lease surely holds (send time of the last successful renewal + lease) */
  private leaseEnd = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private stopped = false;
  private inflight: Promise<void> = Promise.resolve();
  private readonly listeners = new Set<(leader: boolean) => void>();

  constructor(
    private readonly redis: Redis,
    private readonly name: string,
    readonly id: string,
    private readonly leaseMs: number,
    private readonly events?: EventBus,
  ) {}

  get isLeader(): boolean {
    // past the lease without a renewal (Redis unreachable, process paused): not leader any more
    return this.leading && Date.now() < this.leaseEnd;
  }

  get term(): number {
    return this.currentTerm;
  }

  onChange(fn: (leader: boolean) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  start(): this {
    this.inflight = this.round();
    return this;
  }

  /** Stops campaigning; a leader gives the key up so another worker takes over at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.inflight; // a round in flight may just have won the key
    if (this.leading) {
      this.set(false);
      await syncScripts.run(this.redis, "leaderResign", [leaderKey(this.name)], [this.id]).catch(() => {});
    }
  }

  private async round(): Promise<void> {
    if (this.stopped) return;
    const asked = Date.now();
    try {
      const [leads, term] = (await syncScripts.run(this.redis, "leaderAcquire", [leaderKey(this.name), `${leaderKey(this.name)}:term`], [this.id, Math.ceil(this.leaseMs)])) as [number, number];
      this.currentTerm = term;
      if (leads === 1) this.leaseEnd = asked + this.leaseMs;
      this.set(leads === 1);
    } catch {
      if (Date.now() >= this.leaseEnd) this.set(false);
    }
    if (this.stopped) return;
    const wait = this.leading ? this.leaseMs / 3 : Math.min(this.leaseMs / 10, 1000) + Math.random() * 50;
    this.timer = setTimeout(() => (this.inflight = this.round()), wait);
  }

  private set(leader: boolean): void {
    if (leader === this.leading) return;
    this.leading = leader;
    this.events?.emit({ type: leader ? "leader_elected" : "leader_lost", workerId: this.id, term: this.currentTerm });
    for (const fn of this.listeners) fn(leader);
  }
}

/** Standalone: this process is the only one, so it always leads. */
export const SOLE_LEADER: Leadership = { isLeader: true, onChange: () => () => {} };
