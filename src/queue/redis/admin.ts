// src/queue/redis/admin.ts: the inspecting and administering side of the Redis queue: depth and
// stats (stats.lua), dead letters listed, replayed (replay.lua: their runs opened again) and
// purged (purge.lua).

import type { Buffer } from "node:buffer";
import { type Priority, type Topic, TOPICS, type TopicMessages } from "../../model/index.ts";
import type { DeadLetter, QueueStats, TopicStats } from "../queue.ts";
import type { QueueCore } from "./core.ts";
import type { StreamRef } from "./keys.ts";
import { compareIds, decodePayload } from "./entries.ts";
import { queueScripts } from "./scripts.ts";

export class QueueAdmin {
  constructor(private readonly core: QueueCore) {}

  async depth(topic: Topic): Promise<number> {
    const pipe = this.core.cmd.pipeline();
    queueScripts.pipe(pipe, "stats", this.core.streams(topic).map((s) => s.key), [this.core.keys.group]);
    pipe.zcard(this.core.keys.delayed(topic));
    const [lagPending, delayed] = await this.core.exec(pipe);
    let ready = 0;
    const lp = lagPending as number[];
    for (let i = 0; i < lp.length; i += 2) ready += lp[i];
    return ready + (delayed as number);
  }

  async stats(): Promise<QueueStats> {
    const pipe = this.core.cmd.pipeline();
    for (const t of TOPICS) {
      const streams = this.core.streams(t);
      queueScripts.pipe(pipe, "stats", streams.map((s) => s.key), [this.core.keys.group]);
      pipe.zcard(this.core.keys.delayed(t));
      for (const s of streams) pipe.xlen(this.core.keys.dlq(s.key));
    }
    const replies = await this.core.exec(pipe);
    const out = {} as QueueStats;
    let at = 0;
    for (const t of TOPICS) {
      const streams = this.core.streams(t);
      const lp = replies[at++] as number[];
      const s: TopicStats = { ready: { high: 0, normal: 0, low: 0 }, inFlight: 0, delayed: replies[at++] as number, dead: 0 };
      streams.forEach((stream, i) => {
        s.ready[stream.priority] += lp[2 * i];
        s.inFlight += lp[2 * i + 1];
      });
      for (let i = 0; i < streams.length; i++) s.dead += replies[at++] as number;
      out[t] = s;
    }
    return out;
  }

  async listDeadLetters(topic: Topic, count: number): Promise<DeadLetter[]> {
    const n = Math.floor(count);
    if (!(n >= 1)) return [];
    const streams = this.core.streams(topic);
    const pipe = this.core.cmd.pipeline();
    for (const s of streams) pipe.xrangeBuffer(this.core.keys.dlq(s.key), "-", "+", "COUNT", n);
    const replies = await this.core.exec(pipe);
    const letters: DeadLetter[] = [];
    streams.forEach((s, i) => {
      for (const [id, fields] of replies[i] as Array<[Buffer, Buffer[]]>) {
        letters.push(this.letter(topic, s.priority, id.toString(), fields));
      }
    });
    return letters.sort((a, b) => compareIds(a.id, b.id)).slice(0, n);
  }

  private letter(topic: Topic, priority: Priority, id: string, fields: Buffer[]): DeadLetter {
    let reason = "";
    let originalId = "";
    let payload: Buffer | undefined;
    for (let i = 0; i + 1 < fields.length; i += 2) {
      const name = fields[i].toString();
      if (name === "payload") payload = fields[i + 1];
      else if (name === "reason") reason = fields[i + 1].toString();
      else if (name === "original_id") originalId = fields[i + 1].toString();
    }
    let message: TopicMessages[Topic] | undefined;
    try {
      message = payload === undefined ? undefined : decodePayload(this.core.codec, topic, payload);
    } catch {
      message = undefined;
    }
    return { topic, priority, id, reason, originalId, message };
  }

  async replayDeadLetters(topic: Topic, count: number): Promise<number> {
    this.core.assertOpen();
    let left = Math.floor(count);
    let moved = 0;
    for (const s of this.core.streams(topic)) {
      while (left >= 1) {
        const n = await this.replayBatch(topic, s, Math.min(left, 1000));
        if (n === 0) break;
        moved += n;
        left -= n;
      }
    }
    return moved;
  }

  /**
   * replay.lua over the oldest `count` letters of one stream's dead letters. Their runs are in
   * their payloads: read here, then moved (and their runs opened again) in the script.
   */
  private async replayBatch(topic: Topic, s: StreamRef, count: number): Promise<number> {
    const dlq = this.core.keys.dlq(s.key);
    const letters = (await this.core.guard(this.core.cmd.xrangeBuffer(dlq, "-", "+", "COUNT", count))) as Array<[Buffer, Buffer[]]>;
    if (letters.length === 0) return 0;
    const keys = [dlq, s.key];
    const runIndex = new Map<string, number>();
    const args: Array<string | number> = [this.core.keys.group];
    for (const [id, fields] of letters) {
      const runKey = this.core.keys.run(this.letter(topic, s.priority, id.toString(), fields).message?.runId ?? "undecodable");
      let r = runIndex.get(runKey);
      if (r === undefined) {
        keys.push(runKey);
        runIndex.set(runKey, (r = keys.length));
      }
      args.push(id.toString(), r);
    }
    return (await this.core.guard(queueScripts.run(this.core.cmd, "replay", keys, args))) as number;
  }

  async purgeDeadLetters(topic: Topic): Promise<number> {
    this.core.assertOpen();
    return (await this.core.guard(queueScripts.run(this.core.cmd, "purge", this.core.streams(topic).map((s) => this.core.keys.dlq(s.key)), []))) as number;
  }
}
