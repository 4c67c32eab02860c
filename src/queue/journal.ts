import type { Priority, Topic, TopicMessages } from "../model/index.ts";
import type { DeadLetter } from "./queue.ts";
import type { SeenKeys } from "./seen-set.ts";

/** One queued message as the in-process queue holds it. */
export interface QueueEntry {
  topic: Topic;
  priority: Priority;
  /**
   * The message; undefined while it is "cold" (only on disk: the journal reloads it when the
   * entry is read), so a long frontier costs a few numbers per entry, not the whole message.
   */
  message: TopicMessages[Topic] | undefined;
  /** deliveries so far */
  attempts: number;
  /** the entry's number (a new one per enqueue or retry); the journal keys its records by it */
  seq: number;
  /**
   * the journal's note of where the entry is on disk: the record (segment, offset, length) and the
   * entry's place in it (created as undefined: no hidden-class change later)
   */
  ref: { seg: number; off: number; len: number; index: number } | undefined;
}

/** What a journal found on disk: the queue state to continue from. */
export interface RecoveredQueue {
  /** ready entries (those in flight at the crash included), in enqueue order; made one at a time (there may be millions) */
  ready: Iterable<QueueEntry>;
  delayed: { due: number; entry: QueueEntry }[];
  dead: DeadLetter[];
  /** dedup keys to re-add (a journal that keeps its own seen set, `QueueJournal.seen`, has none) */
  seen?: Iterable<string>;
  /** the highest entry number used so far */
  lastSeq: number;
  /**
   * entries (by seq) whose delivery blocked the process until the watchdog ended it: each such
   * end counts as a delivery, with the watchdog's reason (src/runtime/watchdog.ts)
   */
  poisoned?: Map<number, { count: number; reason: string }>;
}

/**
 * Where `MemoryQueue` records every state change when its state must outlive the process (the
 * standalone frontier on disk). Calls are synchronous and only buffer; `commit()` resolves once
 * everything recorded before it is durable. The queue's semantics stay in MemoryQueue: a change
 * to them (a new kind of settle) adds one call here if it changes what must be persisted.
 */
export interface QueueJournal {
  /** the seen set to use, kept by the journal (on disk); without it the queue keeps one in memory */
  readonly seen?: SeenKeys;
  /**
   * new ready or delayed entries (`due` set for delayed ones), numbered in order (consecutive seqs:
   * one publish); `dedupKeys[i]` (if any) joins the seen set with `entries[i]`
   */
  enqueued(entries: readonly QueueEntry[], dedupKeys: readonly (string | undefined)[], due?: number): void;
  /** the entry left the queue (acked, or replaced by a retry / dead letter recorded with it) */
  settled(entry: QueueEntry): void;
  /** the entry (undefined: a derived message) became this dead letter */
  deadLettered(entry: QueueEntry | undefined, letter: DeadLetter): void;
  /** these dead letters were replayed or purged */
  deadLettersRemoved(topic: Topic, ids: readonly string[]): void;
  /** the message of a cold entry, read back from disk */
  load(entry: QueueEntry): TopicMessages[Topic];
  commit(): Promise<void>;
}
