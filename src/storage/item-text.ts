// src/storage/item-text.ts: an item as the JSON text every sink stores, or the reason it cannot
// be stored. Serializing happens before a sink books anything (a stored mark, a seen entry), so
// an item JSON cannot represent never counts as stored: its page is dead-lettered with the reason.
import type { ItemBatch } from "./sink.ts";

/** `output.max_item_bytes`'s default: 8 MiB of JSON per item (a page's items may add up to more). */
export const DEFAULT_MAX_ITEM_BYTES = 8 * 1024 * 1024;

const encoder = new TextEncoder();

/**
 * An item no sink can store (a BigInt, a circular reference, a function or undefined at the top,
 * over `max_item_bytes`). Retrying cannot help: the page is dead-lettered with this reason.
 */
export class UnstorableItemError extends Error {
  override readonly name = "UnstorableItemError";
}

/** The JSON texts of a batch's items (computed once per batch, shared by every sink that stores it). */
const textsOf = new WeakMap<ItemBatch, readonly string[]>();

/**
 * The items of `batch` as JSON texts, each at most `maxItemBytes` UTF-8 bytes; throws an
 * UnstorableItemError naming the item (its index on the page) and why.
 */
export function itemTexts(batch: ItemBatch, maxItemBytes = DEFAULT_MAX_ITEM_BYTES): readonly string[] {
  const known = textsOf.get(batch);
  if (known) return known;
  const texts: string[] = [];
  batch.items.forEach((item, i) => {
    let text: string | undefined;
    try {
      text = JSON.stringify(item);
    } catch (err) {
      throw new UnstorableItemError(`item ${i} of ${batch.module} cannot be stored as JSON: ${describeJsonError(err)}`);
    }
    if (text === undefined) throw new UnstorableItemError(`item ${i} of ${batch.module} cannot be stored as JSON: it is ${typeof item}`);
    // a UTF-8 byte is at most 3 per UTF-16 unit: count exactly only near the limit
    if (text.length * 3 > maxItemBytes) {
      const bytes = encoder.encode(text).length;
      if (bytes > maxItemBytes) {
        throw new UnstorableItemError(`item ${i} of ${batch.module} is ${bytes} bytes of JSON, over output.max_item_bytes = ${maxItemBytes}`);
      }
    }
    texts.push(text);
  });
  textsOf.set(batch, texts);
  return texts;
}

function describeJsonError(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  if (/circular/i.test(message)) return "it holds a circular reference";
  if (/bigint/i.test(message)) return "it holds a BigInt (convert it to a string or number)";
  return message.split("\n")[0];
}
