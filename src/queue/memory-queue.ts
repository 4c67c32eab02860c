import { PRIORITIES, type Priority, TOPICS, type Topic, type TopicMessages } from "../model/index.ts";
import { DelayHeap } from "./delay-heap.ts";
import { Fifo } from "./fifo.ts";
import { ReadyList } from "./ready-list.ts";
import type { QueueEntry as Entry, QueueJournal, RecoveredQueue } from "./journal.ts";
import { type SeenKeys, SeenSet } from "./seen-set.ts";
import {
  type DeadLetter,
  type Delivery,
  defaultPriority,
  type Outgoing,
  type PublishResult,
  type Queue,
  type QueueStats,
} from "./queue.ts";

interface TopicState {
  ready: Record<Priority, Pick<Fifo<Entry>, "push" | "shift" | "length">>;
  inFlight: Map<string, Entry>;
  dead: DeadLetter[];
  waiters: Array<() => void>;
}

export interface MemoryQueueOptions {
  /** records every change so the state outlives the process (the standalone frontier on disk) */
  journal?: QueueJournal;
  /** the state a journal recovered, to continue from */
  recovered?: RecoveredQueue;
  /** with a journal: messages kept decoded at the head of each ready list; the rest wait on disk (a few bytes each in memory) */
  hotEntries?: number;
  /**
   * deliveries a message may have (request_max_retries): a recovered entry whose deliveries
   * ended the process (the watchdog's records) that often is dead-lettered with the watchdog's reason
   */
  maxDeliveries?: number;
}

/**
 * The in-process Queue for `run-standalone`. Without a journal nothing leaves memory, so it is
 * as durable as the process; with one (src/state/) every change is recorded and each settling
 * call resolves once its record is durable, and long ready lists keep only entry numbers in
 * memory. Settling is synchronous underneath; the promises keep the Queue contract.
 */
export class MemoryQueue implements Queue {
  readonly backend = "memory";
  private readonly topics = new Map<Topic, TopicState>();
  private readonly delayed = new DelayHeap<Entry>();
  private readonly seen: SeenKeys;
  private readonly journal: QueueJournal | undefined;
  private readonly hotEntries: number;
  private delayTimer: ReturnType<typeof setTimeout> | undefined;
  private delayTimerDue = Infinity;
  private nextId = 0;
  private nextSeq = 0;
  private closed = false;

  constructor(options: MemoryQueueOptions = {}) {
    // with a journal most ready entries are cold: ReadyList keeps those as a few numbers each
    const list = (t: Topic, p: Priority) => (options.journal ? new ReadyList(t, p) : new Fifo<Entry>());
    for (const t of TOPICS) {
      this.topics.set(t, {
        ready: { high: list(t, "high"), normal: list(t, "normal"), low: list(t, "low") },
        inFlight: new Map(),
        dead: [],
        waiters: [],
      });
    }
    this.journal = options.journal;
    this.seen = options.journal?.seen ?? new SeenSet();
    this.hotEntries = options.hotEntries ?? 512;
    const r = options.recovered;
    if (r) {
      this.nextSeq = r.lastSeq;
      for (const key of r.seen ?? []) this.seen.add(key);
      for (const entry of r.ready) {
        const poison = r.poisoned?.get(entry.seq);
        if (poison) entry.attempts += poison.count;
        if (poison && options.maxDeliveries !== undefined && entry.attempts >= options.maxDeliveries) this.deadLetterRecovered(entry, `${poison.reason} (after ${entry.attempts} attempts)`);
        else this.makeReady(entry);
      }
      for (const { due, entry } of r.delayed) this.delayed.push(due, entry);
      for (const d of r.dead) this.state(d.topic).dead.push(d);
      this.armDelayTimer();
    }
  }

  /** Dead letters made at recovery (poison entries whose budget was spent). */
  readonly recoveredDeadLetters: DeadLetter[] = [];

  private deadLetterRecovered(entry: Entry, reason: string): void {
    entry.message ??= this.journal!.load(entry);
    const letter: DeadLetter = { topic: entry.topic, priority: entry.priority, id: `dead-${++this.nextSeq}`, reason, originalId: String(entry.seq), message: entry.message };
    this.state(entry.topic).dead.push(letter);
    this.journal?.deadLettered(entry, letter);
    this.recoveredDeadLetters.push(letter);
  }

  /** Resolves once everything changed so far is durable (at once without a journal). */
  private durable<T>(value: T): Promise<T> {
    return this.journal ? this.journal.commit().then(() => value) : Promise.resolve(value);
  }

  private state(topic: Topic): TopicState {
    return this.topics.get(topic)!;
  }

  seenBefore(dedupKey: string): boolean {
    return this.seen.has(dedupKey);
  }

  publish<K extends Topic>(topic: K, items: readonly Outgoing<K>[]): Promise<PublishResult> {
    let duplicates = 0;
    const fresh: Entry[] = [];
    const keys: (string | undefined)[] = [];
    for (const item of items) {
      if (item.dedupKey !== undefined) {
        if (!this.seen.add(item.dedupKey)) {
          duplicates++;
          continue;
        }
      }
      fresh.push({ topic, priority: item.priority ?? defaultPriority(item.message), message: item.message, attempts: 0, seq: 0, ref: undefined });
      keys.push(item.dedupKey);
    }
    // numbered by priority (stable: each list keeps the publish order), so a publish of mixed
    // priorities is one run of numbers per priority: one compact journal record each
    const order = fresh.some((e) => e.priority !== fresh[0].priority) ? byPriority(fresh.length, (i) => fresh[i].priority) : undefined;
    const entries = order ? order.map((i) => fresh[i]) : fresh;
    const entryKeys = order ? order.map((i) => keys[i]) : keys;
    for (const entry of entries) entry.seq = ++this.nextSeq;
    // one journal call for the whole publish: a page's follow-ups become one compact record
    if (entries.length > 0) this.journal?.enqueued(entries, entryKeys);
    for (const entry of entries) this.makeReady(entry);
    return this.durable({ accepted: entries.length, duplicates });
  }

  /** A new entry: numbered, journaled, then ready (or delayed until `due`). */
  private enqueue(entry: Entry, dedupKey?: string, due?: number): void {
    entry.seq = ++this.nextSeq;
    this.journal?.enqueued([entry], [dedupKey], due);
    if (due === undefined) this.makeReady(entry);
    else {
      this.delayed.push(due, entry);
      this.armDelayTimer();
    }
  }

  private makeReady(entry: Entry): void {
    const s = this.state(entry.topic);
    const fifo = s.ready[entry.priority];
    if (this.journal && fifo.length >= this.hotEntries) entry.message = undefined;
    fifo.push(entry);
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

  /** The entry's number, which the journal keeps across restarts (none without a journal). */
  poisonKey(delivery: Delivery<Topic>): string | undefined {
    if (!this.journal) return undefined;
    const entry = this.state(delivery.topic).inFlight.get(delivery.entryId);
    return entry ? String(entry.seq) : undefined;
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
        entry.message ??= this.journal!.load(entry);
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
    const entry = this.settle(delivery);
    if (entry) this.journal?.settled(entry);
    return this.durable(undefined);
  }

  retryLater(delivery: Delivery<Topic>, delayMs: number, _reason: string): Promise<void> {
    return this.requeue(this.settle(delivery), delayMs, 0);
  }

  defer(delivery: Delivery<Topic>, delayMs: number, _reason: string): Promise<void> {
    return this.requeue(this.settle(delivery), delayMs, -1); // a politeness wait is not a delivery attempt
  }

  /** Back to ready now, or delayed until its due time, with `attemptsDelta` added to its attempts. */
  private requeue(entry: Entry | undefined, delayMs: number, attemptsDelta: number): Promise<void> {
    if (entry) {
      // the re-enqueue is recorded before the settle: a crash between them duplicates, never loses
      const again: Entry = { ...entry, attempts: entry.attempts + attemptsDelta };
      this.enqueue(again, undefined, delayMs <= 0 ? undefined : Date.now() + delayMs);
      this.journal?.settled(entry);
    }
    return this.durable(undefined);
  }

  private armDelayTimer(): void {
    const due = this.delayed.peekDue();
    if (due === undefined || due >= this.delayTimerDue) return;
    if (this.delayTimer) clearTimeout(this.delayTimer);
    this.delayTimerDue = due;
    this.delayTimer = setTimeout(() => {
      this.delayTimer = undefined;
      this.delayTimerDue = Infinity;
      for (const entry of this.delayed.popDue(Date.now())) this.makeReady(entry);
      this.armDelayTimer();
    }, Math.max(0, due - Date.now()));
  }

  deadLetter(delivery: Delivery<Topic>, reason: string): Promise<void> {
    const entry = this.settle(delivery);
    if (entry) {
      const letter: DeadLetter = {
        topic: delivery.topic,
        priority: delivery.priority,
        id: `dead-${++this.nextSeq}`,
        reason,
        originalId: delivery.entryId,
        message: entry.message,
      };
      this.state(delivery.topic).dead.push(letter);
      this.journal?.deadLettered(entry, letter);
    }
    return this.durable(undefined);
  }

  deadLetterMessage<K extends Topic>(topic: K, message: TopicMessages[K], reason: string, originalId: string): Promise<void> {
    const letter: DeadLetter = { topic, priority: defaultPriority(message), id: `dead-${++this.nextSeq}`, reason, originalId, message };
    this.state(topic).dead.push(letter);
    this.journal?.deadLettered(undefined, letter);
    return this.durable(undefined);
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
      if (d.message !== undefined) this.enqueue({ topic, priority: d.priority, message: d.message, attempts: 0, seq: 0, ref: undefined });
    }
    this.journal?.deadLettersRemoved(topic, moved.map((d) => d.id));
    return this.durable(moved.length);
  }

  purgeDeadLetters(topic: Topic): Promise<number> {
    const purged = this.state(topic).dead;
    this.state(topic).dead = [];
    this.journal?.deadLettersRemoved(topic, purged.map((d) => d.id));
    return this.durable(purged.length);
  }

  close(): Promise<void> {
    this.closed = true;
    if (this.delayTimer) clearTimeout(this.delayTimer);
    for (const t of TOPICS) for (const wake of this.state(t).waiters.splice(0)) wake();
    return Promise.resolve();
  }
}

/** Indexes 0..n-1 ordered by priority (high first), in their order within a priority. */
function byPriority(n: number, priorityOf: (i: number) => Priority): number[] {
  const out: number[] = [];
  for (const p of PRIORITIES) for (let i = 0; i < n; i++) if (priorityOf(i) === p) out.push(i);
  return out;
}
