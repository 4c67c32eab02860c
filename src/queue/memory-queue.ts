import { PRIORITIES, type Priority, TOPICS, type Topic, type TopicMessages } from "../model/index.ts";
import { DelayHeap } from "./delay-heap.ts";
import { Fifo } from "./fifo.ts";
import { SeenSet } from "./seen-set.ts";
import {
  type DeadLetter,
  type Delivery,
  defaultPriority,
  type Outgoing,
  type PublishResult,
  type Queue,
  type QueueStats,
} from "./queue.ts";

interface Entry {
  topic: Topic;
  priority: Priority;
  message: TopicMessages[Topic];
  /** deliveries so far */
  attempts: number;
}

interface TopicState {
  ready: Record<Priority, Fifo<Entry>>;
  inFlight: Map<string, Entry>;
  dead: DeadLetter[];
  waiters: Array<() => void>;
}

/**
 * The in-process Queue for `run-standalone`: nothing leaves memory, so it is as durable as the
 * process. Settling is synchronous underneath; the promises keep the Queue contract.
 */
export class MemoryQueue implements Queue {
  readonly backend = "memory";
  private readonly topics = new Map<Topic, TopicState>();
  private readonly delayed = new DelayHeap<Entry>();
  private readonly seen = new SeenSet();
  private delayTimer: ReturnType<typeof setTimeout> | undefined;
  private delayTimerDue = Infinity;
  private nextId = 0;
  private closed = false;

  constructor() {
    for (const t of TOPICS) {
      this.topics.set(t, {
        ready: { high: new Fifo(), normal: new Fifo(), low: new Fifo() },
        inFlight: new Map(),
        dead: [],
        waiters: [],
      });
    }
  }

  private state(topic: Topic): TopicState {
    return this.topics.get(topic)!;
  }

  publish<K extends Topic>(topic: K, items: readonly Outgoing<K>[]): Promise<PublishResult> {
    let accepted = 0;
    let duplicates = 0;
    for (const item of items) {
      if (item.dedupKey !== undefined) {
        if (!this.seen.add(item.dedupKey)) {
          duplicates++;
          continue;
        }
      }
      this.enqueue({ topic, priority: item.priority ?? defaultPriority(item.message), message: item.message, attempts: 0 });
      accepted++;
    }
    return Promise.resolve({ accepted, duplicates });
  }

  private enqueue(entry: Entry): void {
    const s = this.state(entry.topic);
    s.ready[entry.priority].push(entry);
    const waiters = s.waiters.splice(0);
    for (const wake of waiters) wake();
  }

  read<K extends Topic>(topic: K, max: number, blockMs: number): Promise<Delivery<K>[]> {
    const got = this.take(topic, max);
    if (got.length > 0 || this.closed || blockMs <= 0) return Promise.resolve(got);
    const s = this.state(topic);
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        resolve(this.take(topic, max));
      };
      const timer = setTimeout(() => {
        const i = s.waiters.indexOf(wake);
        if (i >= 0) s.waiters.splice(i, 1);
        resolve([]);
      }, blockMs);
      s.waiters.push(wake);
    });
  }

  private take<K extends Topic>(topic: K, max: number): Delivery<K>[] {
    const s = this.state(topic);
    const out: Delivery<K>[] = [];
    if (this.closed) return out;
    for (const p of PRIORITIES) {
      const fifo = s.ready[p];
      while (out.length < max) {
        const entry = fifo.shift();
        if (!entry) break;
        entry.attempts++;
        const entryId = String(++this.nextId);
        s.inFlight.set(entryId, entry);
        out.push({ topic, priority: p, entryId, message: entry.message as TopicMessages[K], attempt: entry.attempts });
      }
    }
    return out;
  }

  private settle(delivery: Delivery<Topic>): Entry | undefined {
    const s = this.state(delivery.topic);
    const entry = s.inFlight.get(delivery.entryId);
    if (entry) s.inFlight.delete(delivery.entryId);
    return entry;
  }

  ack(delivery: Delivery<Topic>): Promise<void> {
    this.settle(delivery);
    return Promise.resolve();
  }

  retryLater(delivery: Delivery<Topic>, delayMs: number, _reason: string): Promise<void> {
    this.park(this.settle(delivery), delayMs);
    return Promise.resolve();
  }

  defer(delivery: Delivery<Topic>, delayMs: number, _reason: string): Promise<void> {
    const entry = this.settle(delivery);
    if (entry) entry.attempts--; // a politeness wait is not a delivery attempt
    this.park(entry, delayMs);
    return Promise.resolve();
  }

  /** Back to ready now, or into the delay heap until its due time. */
  private park(entry: Entry | undefined, delayMs: number): void {
    if (!entry) return;
    if (delayMs <= 0) this.enqueue(entry);
    else {
      this.delayed.push(Date.now() + delayMs, entry);
      this.armDelayTimer();
    }
  }

  private armDelayTimer(): void {
    const due = this.delayed.peekDue();
    if (due === undefined || due >= this.delayTimerDue) return;
    if (this.delayTimer) clearTimeout(this.delayTimer);
    this.delayTimerDue = due;
    this.delayTimer = setTimeout(() => {
      this.delayTimer = undefined;
      this.delayTimerDue = Infinity;
      for (const entry of this.delayed.popDue(Date.now())) this.enqueue(entry);
      this.armDelayTimer();
    }, Math.max(0, due - Date.now()));
  }

  deadLetter(delivery: Delivery<Topic>, reason: string): Promise<void> {
    const entry = this.settle(delivery);
    if (entry) {
      this.state(delivery.topic).dead.push({
        topic: delivery.topic,
        priority: delivery.priority,
        id: `dead-${++this.nextId}`,
        reason,
        originalId: delivery.entryId,
        message: entry.message,
      });
    }
    return Promise.resolve();
  }

  deadLetterMessage<K extends Topic>(topic: K, message: TopicMessages[K], reason: string, originalId: string): Promise<void> {
    this.state(topic).dead.push({ topic, priority: defaultPriority(message), id: `dead-${++this.nextId}`, reason, originalId, message });
    return Promise.resolve();
  }

  touch(): Promise<void> {
    return Promise.resolve();
  }

  depth(topic: Topic): Promise<number> {
    return Promise.resolve(this.readyCount(topic) + this.delayedCount(topic));
  }

  private readyCount(topic: Topic): number {
    const r = this.state(topic).ready;
    return r.high.length + r.normal.length + r.low.length;
  }

  private delayedCount(topic: Topic): number {
    let n = 0;
    for (const e of this.delayed) if (e.topic === topic) n++;
    return n;
  }

  /** True when nothing is ready, in flight or delayed on any topic: a standalone crawl is done. */
  isDrained(): boolean {
    if (this.delayed.size > 0) return false;
    for (const t of TOPICS) {
      if (this.readyCount(t) > 0 || this.state(t).inFlight.size > 0) return false;
    }
    return true;
  }

  stats(): Promise<QueueStats> {
    const out = {} as QueueStats;
    for (const t of TOPICS) {
      const s = this.state(t);
      out[t] = {
        ready: { high: s.ready.high.length, normal: s.ready.normal.length, low: s.ready.low.length },
        inFlight: s.inFlight.size,
        delayed: this.delayedCount(t),
        dead: s.dead.length,
      };
    }
    return Promise.resolve(out);
  }

  listDeadLetters(topic: Topic, count: number): Promise<DeadLetter[]> {
    return Promise.resolve(this.state(topic).dead.slice(0, count));
  }

  replayDeadLetters(topic: Topic, count: number): Promise<number> {
    const moved = this.state(topic).dead.splice(0, count);
    for (const d of moved) {
      if (d.message !== undefined) this.enqueue({ topic, priority: d.priority, message: d.message, attempts: 0 });
    }
    return Promise.resolve(moved.length);
  }

  purgeDeadLetters(topic: Topic): Promise<number> {
    const n = this.state(topic).dead.length;
    this.state(topic).dead = [];
    return Promise.resolve(n);
  }

  close(): Promise<void> {
    this.closed = true;
    if (this.delayTimer) clearTimeout(this.delayTimer);
    for (const t of TOPICS) for (const wake of this.state(t).waiters.splice(0)) wake();
    return Promise.resolve();
  }
}
