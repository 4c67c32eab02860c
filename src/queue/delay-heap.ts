/** A binary min-heap of items keyed by due time (ms), for delayed retries. */
export class DelayHeap<T> {
  private heap: { due: number; item: T }[] = [];

  get size(): number {
    return this.heap.length;
  }

  /** The earliest due time, or undefined when empty. */
  peekDue(): number | undefined {
    return this.heap[0]?.due;
  }

  push(due: number, item: T): void {
    const h = this.heap;
    h.push({ due, item });
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (h[p].due <= h[i].due) break;
      [h[p], h[i]] = [h[i], h[p]];
      i = p;
    }
  }

  /** Removes and returns every item due at or before `now`, earliest first. */
  popDue(now: number): T[] {
    const out: T[] = [];
    const h = this.heap;
    while (h.length > 0 && h[0].due <= now) {
      out.push(h[0].item);
      const last = h.pop()!;
      if (h.length === 0) break;
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && h[l].due < h[m].due) m = l;
        if (r < h.length && h[r].due < h[m].due) m = r;
        if (m === i) break;
        [h[m], h[i]] = [h[i], h[m]];
        i = m;
      }
    }
    return out;
  }

  *[Symbol.iterator](): Iterator<T> {
    for (const e of this.heap) yield e.item;
  }
}
