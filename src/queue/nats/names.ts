// src/queue/nats/names.ts: the JetStream names of mocra 0.4.1's NATS backend
// (crates/mocra-core/src/queue/nats.rs and manager.rs at tag 0.4.1), byte for byte:
//
//   stream     {ns}_stream            subjects ["{ns}.>"], max_age = minid_time hours (when > 0)
//   subject    {ns}.{topic}-{prio}    prio = high | normal | low (manager.rs: "{topic}-{suffix}")
//   consumer   {ns}_{topic}-{prio}_c  with every "-" replaced by "_" (durable pull, explicit ack)
//   dead       {ns}._dlq.{topic}-{prio}
//
// where every name token is sanitised as mocra does: ".", "*", ">", " " and "\t" become "_".
// The dead-letter subjects lie inside the stream ({ns}.>) but outside every consumer's filter.

import type { Priority, Topic } from "../../model/index.ts";

/** mocra's `sanitize`: characters illegal in a subject token or stream name become "_". */
export function sanitize(s: string): string {
  return s.replace(/[.*> \t]/g, "_");
}

/** mocra's headers (queue/lib.rs), and ours beside them (a mocra reader ignores those). */
export const HEADER_ATTEMPT = "x-attempt";
export const HEADER_CREATED_AT = "x-created-at";
export const HEADER_NACK_REASON = "x-nack-reason";
/** ours: epoch ms before which a retried or deferred message is not handed out */
export const HEADER_DUE_AT = "x-due-at";
/** ours: the stream sequence of the message a dead letter was made from */
export const HEADER_ORIGINAL_ID = "x-original-id";

export class JetStreamNames {
  readonly ns: string;
  readonly stream: string;

  constructor(namespace: string) {
    this.ns = sanitize(namespace);
    this.stream = `${this.ns}_stream`;
  }

  /** mocra's topic name: "<topic>-<priority>" */
  topic(topic: Topic, priority: Priority): string {
    return `${topic}-${priority}`;
  }

  /** "{ns}.>": every subject of the stream */
  streamSubjects(): string {
    return `${this.ns}.>`;
  }

  subject(topic: Topic, priority: Priority): string {
    return `${this.ns}.${sanitize(this.topic(topic, priority))}`;
  }

  deadSubject(topic: Topic, priority: Priority): string {
    return `${this.ns}._dlq.${sanitize(this.topic(topic, priority))}`;
  }

  durable(topic: Topic, priority: Priority): string {
    return `${this.ns}_${sanitize(this.topic(topic, priority))}_c`.replaceAll("-", "_");
  }
}
