import { stdout } from "node:process";
import { SeenSet } from "../queue/seen-set.ts";
import type { ItemBatch, ItemSink } from "./sink.ts";

/** Items as JSON lines on standard output, `{"module": ..., "item": ...}`; progress goes to stderr. */
export class StdoutSink implements ItemSink {
  private readonly written = new SeenSet();

  describe(): string {
    return "stdout";
  }

  write(batch: ItemBatch): Promise<boolean> {
    if (!this.written.add(batch.fingerprint)) return Promise.resolve(false);
    let text = "";
    for (const item of batch.items) text += JSON.stringify({ module: batch.module, item }) + "\n";
    return new Promise((resolve, reject) => {
      stdout.write(text, (err) => {
        if (!err) return resolve(true);
        this.written.delete(batch.fingerprint); // not written: a retry must write it
        reject(err);
      });
    });
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
