/**
 * Credit in use per source, read when someone asks (a scrape, a dashboard poll): a source
 * registers a reader of its own counter once, so nothing is recorded per message.
 */
export class CreditMeter {
  private readonly sources = new Set<{ topic: string; limit: number; inUse: () => number }>();

  /** Returns a function that unregisters the source. */
  register(topic: string, limit: number, inUse: () => number): () => void {
    const source = { topic, limit, inUse };
    this.sources.add(source);
    return () => this.sources.delete(source);
  }

  /** Per topic: messages out and not yet settled, and the credit (prefetch) allowed. */
  read(): { topic: string; inUse: number; limit: number }[] {
    const byTopic = new Map<string, { topic: string; inUse: number; limit: number }>();
    for (const s of this.sources) {
      const row = byTopic.get(s.topic) ?? { topic: s.topic, inUse: 0, limit: 0 };
      row.inUse += s.inUse();
      row.limit += s.limit;
      byTopic.set(s.topic, row);
    }
    return [...byTopic.values()];
  }
}
