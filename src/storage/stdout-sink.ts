import { stdout } from "node:process";
import { SeenSet } from "../queue/seen-set.ts";
import { writeFault } from "../state/errors.ts";
import { itemTexts } from "./item-text.ts";
import type { ItemBatch, ItemSink } from "./sink.ts";

/** Items as JSON lines on standard output, `{"module": ..., "item": ...}`; progress goes to stderr. */
export class StdoutSink implements ItemSink {
  private readonly written = new SeenSet();

  constructor(private readonly maxItemBytes?: number) {}

  describe(): string {
    return "stdout";
  }

  write(batch: ItemBatch): Promise<boolean> {
    let texts: readonly string[];
    try {
      texts = itemTexts(batch, this.maxItemBytes);
    } catch (err) {
      return Promise.reject(err); // before it is booked as written: nothing counts as stored
    }
    if (!this.written.add(batch.fingerprint)) return Promise.resolve(false);
    const prefix = `{"module":${JSON.stringify(batch.module)},"item":`;
    let text = "";
    for (const item of texts) text += `${prefix}${item}}\n`;
    return new Promise((resolve, reject) => {
      stdout.write(text, (err) => {
        if (!err) return resolve(true);
        this.written.delete(batch.fingerprint); // not written: a retry must write it
        reject(writeFault("stdout", err));
      });
    });
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
