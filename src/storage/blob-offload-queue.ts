// src/queue/blob-offload-queue.ts: mocra's hybrid storage (wire FORMAT §6) as a Queue decorator.
// Response bodies over 64 KiB travel through blob storage instead of the queue: on publish the
// body is written to `<root>/response/<run_id>/<id>.bin` and the message carries that path in
// `storage_path` with empty `content`; on read the body is loaded back. Every other topic and
// every other operation goes to the wrapped queue unchanged.

import type { EventBus } from "../events/bus.ts";
import type { Response, Topic, TopicMessages } from "../model/index.ts";
import { type BlobStorage, responseBlobKey } from "./blob-storage.ts";
import type { DeadLetter, Delivery, Outgoing, PublishResult, Queue, QueueStats } from "../queue/queue.ts";

/** mocra's BLOCKING_PAYLOAD_BYTES: bodies strictly longer than this are offloaded. */
export const BLOB_OFFLOAD_THRESHOLD = 64 * 1024;

export interface BlobOffloadOptions {
  /** raw body bytes above which a Response is offloaded (strict >); default 65536 */
  threshold?: number;
  /** where a failed offload (published inline instead) is reported as a "warning" */
  events?: EventBus;
}

const EMPTY = new Uint8Array(0);

export class BlobOffloadQueue implements Queue {
  private readonly threshold: number;
  private readonly events: EventBus | undefined;
  /** the inner queue's delivery behind each delivery we handed out with its body reloaded */
  private readonly originals = new WeakMap<Delivery<Topic>, Delivery<Topic>>();

  constructor(
    readonly inner: Queue,
    readonly storage: BlobStorage,
    options: BlobOffloadOptions = {},
  ) {
    this.threshold = options.threshold ?? BLOB_OFFLOAD_THRESHOLD;
    this.events = options.events;
  }

  get backend(): "memory" | "redis" | "nats" {
    return this.inner.backend;
  }

  seenBefore(dedupKey: string): boolean {
    return this.inner.seenBefore?.(dedupKey) ?? false;
  }

  async publish<K extends Topic>(topic: K, items: readonly Outgoing<K>[]): Promise<PublishResult> {
    if (topic !== "response") return this.inner.publish(topic, items);
    const out = await Promise.all(items.map((item) => this.offload(item as Outgoing<"response">)));
    return this.inner.publish(topic, out as unknown as readonly Outgoing<K>[]);
  }

  /**
   * The item with its body in blob storage, if it is large and not offloaded yet. The caller's
   * message is not changed. A failed write publishes the body inline (as mocra does).
   */
  private async offload(item: Outgoing<"response">): Promise<Outgoing<"response">> {
    const m = item.message;
    if (m.content.length <= this.threshold || m.storagePath) return item;
    try {
      const path = await this.storage.put(responseBlobKey(m.runId, m.id), m.content);
      const message: Response = { ...m, storagePath: path, content: EMPTY };
      return { ...item, message };
    } catch (err) {
      this.events?.emit({
        type: "warning",
        message: `blob offload of response ${m.id} failed, published inline: ${errorText(err)}`,
      });
      return item;
    }
  }

  async read<K extends Topic>(topic: K, max: number, blockMs: number): Promise<Delivery<K>[]> {
    const got = await this.inner.read(topic, max, blockMs);
    if (topic !== "response") return got;
    const loaded = await Promise.all(got.map((d) => this.reload(d as unknown as Delivery<"response">)));
    return loaded.filter((d): d is Delivery<"response"> => d !== undefined) as unknown as Delivery<K>[];
  }

  /**
   * The delivery with its body loaded back (a new Delivery with a copied message; the inner
   * delivery keeps the stored form, so a retry or a dead letter does not put the body inline).
   * A failed load dead-letters the delivery and returns undefined.
   */
  private async reload(d: Delivery<"response">): Promise<Delivery<"response"> | undefined> {
    const m = d.message;
    if (!m.storagePath || m.content.length > 0) return d;
    let content: Uint8Array;
    try {
      content = await this.storage.get(m.storagePath);
    } catch (err) {
      try {
        await this.inner.deadLetter(d, `Blob reload failed: ${errorText(err)}`);
      } catch (dlqErr) {
        // not settled: the backend re-delivers it (Redis: reclaimed after claim_min_idle)
        this.events?.emit({
          type: "warning",
          message: `blob reload of response ${m.id} failed and it could not be dead-lettered: ${errorText(dlqErr)}`,
        });
      }
      return undefined;
    }
    const copy: Delivery<"response"> = {
      topic: d.topic,
      priority: d.priority,
      entryId: d.entryId,
      attempt: d.attempt,
      message: { ...m, content },
    };
    this.originals.set(copy as Delivery<Topic>, d as Delivery<Topic>);
    return copy;
  }

  poisonKey(delivery: Delivery<Topic>): string | undefined {
    return this.inner.poisonKey?.(this.original(delivery));
  }

  private original(d: Delivery<Topic>): Delivery<Topic> {
    return this.originals.get(d) ?? d;
  }

  ack(delivery: Delivery<Topic>): Promise<void> {
    return this.inner.ack(this.original(delivery));
  }

  retryLater(delivery: Delivery<Topic>, delayMs: number, reason: string): Promise<void> {
    return this.inner.retryLater(this.original(delivery), delayMs, reason);
  }

  defer(delivery: Delivery<Topic>, delayMs: number, reason: string): Promise<void> {
    return this.inner.defer(this.original(delivery), delayMs, reason);
  }

  deadLetter(delivery: Delivery<Topic>, reason: string): Promise<void> {
    return this.inner.deadLetter(this.original(delivery), reason);
  }

  deadLetterMessage<K extends Topic>(topic: K, message: TopicMessages[K], reason: string, originalId: string): Promise<void> {
    return this.inner.deadLetterMessage(topic, message, reason, originalId);
  }

  touch(deliveries: readonly Delivery<Topic>[]): Promise<void> {
    return this.inner.touch(deliveries.map((d) => this.original(d)));
  }

  depth(topic: Topic): Promise<number> {
    return this.inner.depth(topic);
  }

  stats(): Promise<QueueStats> {
    return this.inner.stats();
  }

  listDeadLetters(topic: Topic, count: number): Promise<DeadLetter[]> {
    return this.inner.listDeadLetters(topic, count);
  }

  replayDeadLetters(topic: Topic, count: number): Promise<number> {
    return this.inner.replayDeadLetters(topic, count);
  }

  purgeDeadLetters(topic: Topic): Promise<number> {
    return this.inner.purgeDeadLetters(topic);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
