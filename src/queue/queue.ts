import type { Priority, Topic, TopicMessages } from "../model/index.ts";

/** A message to enqueue. */
export interface Outgoing<K extends Topic> {
  message: TopicMessages[K];
  /** default: the message's own priority (TaskModel/Request/Response), else "normal" */
  priority?: Priority;
  /**
   * When set, the message is enqueued only if this key was never enqueued before: the seen-check
   * and the enqueue are one atomic step, so a crash can neither lose a request marked seen nor
   * enqueue one twice.
   */
  dedupKey?: string;
}

export interface PublishResult {
  accepted: number;
  duplicates: number;
}

/** One delivery of one queued message. Settle it exactly once: ack, retryLater, defer or deadLetter. */
export interface Delivery<K extends Topic> {
  readonly topic: K;
  readonly priority: Priority;
  /** the backend's id of this entry (a Redis stream entry id, or a counter in memory) */
  readonly entryId: string;
  readonly message: TopicMessages[K];
  /**
   * 1 on the first delivery; counts re-deliveries and delayed retries of the same message, but
   * not deferrals (`defer`): a message deferred on its 2nd delivery comes back as attempt 2.
   */
  readonly attempt: number;
}

export interface TopicStats {
  /** ready to be read, per priority */
  ready: Record<Priority, number>;
  /** delivered, not yet settled */
  inFlight: number;
  /** waiting for their retry due time */
  delayed: number;
  /** dead letters held */
  dead: number;
}

export type QueueStats = Record<Topic, TopicStats>;

export interface DeadLetter {
  topic: Topic;
  priority: Priority;
  id: string;
  reason: string;
  originalId: string;
  /** decoded message, or undefined if the payload was undecodable */
  message: TopicMessages[Topic] | undefined;
}

/**
 * The work queue: topics × priorities, strict priority reads, credit-limited consumption,
 * ack after hand-off, delayed re-delivery and dead letters. Implemented in memory
 * (`MemoryQueue`, one process), on Redis Streams and on NATS JetStream (many workers).
 */
export interface Queue {
  readonly backend: "memory" | "redis" | "nats";
  /** Resolves once every item is durably accepted (or found to be a duplicate). */
  publish<K extends Topic>(topic: K, items: readonly Outgoing<K>[]): Promise<PublishResult>;
  /**
   * Optional, local and synchronous (no I/O): true only when `dedupKey` was certainly enqueued
   * before, so publishing it would count a duplicate. Lets a parse skip building what would be
   * dropped; false means "publish and see" (publish stays the atomic check).
   */
  seenBefore?(dedupKey: string): boolean;
  /**
   * Up to `max` deliveries, high before normal before low (a lower priority only fills credit
   * left over). Waits without polling up to `blockMs` when nothing is ready; resolves [] on
   * timeout or after close(). Undecodable entries never come out: they go to dead letters.
   */
  read<K extends Topic>(topic: K, max: number, blockMs: number): Promise<Delivery<K>[]>;
  /**
   * Optional: the key under which the watchdog (src/runtime/watchdog.ts) records this delivery
   * when module code handling it blocked the process; the backend counts such a record as a
   * delivery across restarts and dead-letters the message with its reason once the budget is spent.
   */
  poisonKey?(delivery: Delivery<Topic>): string | undefined;
  ack(delivery: Delivery<Topic>): Promise<void>;
  /** Atomically settle this delivery and re-enqueue its message, due after `delayMs`. */
  retryLater(delivery: Delivery<Topic>, delayMs: number, reason: string): Promise<void>;
  /**
   * Atomically settle this delivery and re-enqueue its message, due after `delayMs`, WITHOUT
   * counting this delivery: the next delivery of the message has the same `attempt` as this one.
   * For politeness waits (suspension, circuit, concurrency lease, robots.txt fetch, long rate
   * wait), which are not failures of the message and must not spend its retry budget. An
   * implementation must: (1) remove the delivery from its in-flight set as `retryLater` does,
   * (2) park the message until the due time (it counts in `depth` and `stats().delayed`
   * meanwhile), (3) hand it out again with `attempt` equal to this delivery's `attempt`.
   */
  defer(delivery: Delivery<Topic>, delayMs: number, reason: string): Promise<void>;
  /** Atomically settle this delivery and move its message to the dead letters. */
  deadLetter(delivery: Delivery<Topic>, reason: string): Promise<void>;
  /** Store a derived message (e.g. a Response whose parse failed) in `topic`'s dead letters. */
  deadLetterMessage<K extends Topic>(topic: K, message: TopicMessages[K], reason: string, originalId: string): Promise<void>;
  /** Tell the backend these deliveries are still being worked on (no reclaim by others). */
  touch(deliveries: readonly Delivery<Topic>[]): Promise<void>;
  /** Messages of `topic` waiting to be read (ready + delayed), all priorities. */
  depth(topic: Topic): Promise<number>;
  stats(): Promise<QueueStats>;
  listDeadLetters(topic: Topic, count: number): Promise<DeadLetter[]>;
  /** Move dead letters back to their queue; returns how many. */
  replayDeadLetters(topic: Topic, count: number): Promise<number>;
  purgeDeadLetters(topic: Topic): Promise<number>;
  close(): Promise<void>;
}

/** The priority a message travels with unless the publisher says otherwise. */
export function defaultPriority(message: TopicMessages[Topic]): Priority {
  if ("priority" in message) return message.priority;
  return "accountTask" in message ? message.accountTask.priority : "normal";
}
