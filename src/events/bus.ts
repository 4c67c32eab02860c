import { Observable } from "rxjs";
import type { CrawlEvent, CrawlEventType, EventOf } from "./events.ts";

interface Listener {
  next(event: CrawlEvent): void;
  complete?(): void;
  /** the types it reads; undefined = every type */
  types?: ReadonlySet<CrawlEventType>;
}

/**
 * The EventBus: CrawlEvents to their listeners. A page emits several events, so emit() is a
 * loop over a plain array (no Subject, no per-call closure), and a listener may name the types
 * it reads (`listen`), so a stage can skip building an event nobody wants (`wants`).
 * `events$` is the same stream as an Observable (a subscriber of it reads every type).
 */
export class EventBus {
  /** replaced, never mutated, on (un)subscribe: an emit in progress keeps its array */
  private listeners: readonly Listener[] = [];
  /** how many listeners read each type (those that read every type are in `allTypes`) */
  private readonly byType = new Map<CrawlEventType, number>();
  private allTypes = 0;
  private completed = false;

  readonly events$: Observable<CrawlEvent> = this.stream<CrawlEvent>();

  emit(event: CrawlEvent): void {
    const ls = this.listeners;
    for (let i = 0; i < ls.length; i++) {
      const l = ls[i]!;
      if (l.types === undefined || l.types.has(event.type)) {
        try {
          l.next(event);
        } catch (err) {
          // a listener's bug must not fail the stage that emitted: reported as RxJS reports a
          // throwing subscriber (thrown on a timer, an uncaught exception)
          setTimeout(() => {
            throw err;
          });
        }
      }
    }
  }

  /** True if anyone listens: lets a hot path skip building an event nobody reads. */
  get observed(): boolean {
    return this.listeners.length > 0;
  }

  /** True if some listener reads events of `type`: a per-page event is built only then. */
  wants(type: CrawlEventType): boolean {
    return this.allTypes > 0 || (this.byType.get(type) ?? 0) > 0;
  }

  /**
   * Calls `fn` with each event of `types`, synchronously in emit(): for counters that must stay
   * cheap (CrawlStats). Returns the unsubscribe.
   */
  listen<T extends CrawlEventType>(types: readonly T[], fn: (event: EventOf<T>) => void): () => void {
    return this.add({ next: fn as (event: CrawlEvent) => void, types: new Set(types) });
  }

  /** The events of one type, as an Observable (a listener of that type only). */
  on<T extends CrawlEventType>(type: T): Observable<EventOf<T>> {
    return this.stream<EventOf<T>>(new Set([type]));
  }

  complete(): void {
    if (this.completed) return;
    this.completed = true;
    const ls = this.listeners;
    this.listeners = [];
    this.byType.clear();
    this.allTypes = 0;
    for (const l of ls) l.complete?.();
  }

  /** An Observable of the events of `types` (undefined: every type); it completes with the bus. */
  private stream<E extends CrawlEvent>(types?: ReadonlySet<CrawlEventType>): Observable<E> {
    return new Observable<E>((subscriber) => {
      if (this.completed) {
        subscriber.complete();
        return;
      }
      // subscriber.next catches and reports a throwing handler, as a Subject's subscribers do
      return this.add({ next: (e) => subscriber.next(e as E), complete: () => subscriber.complete(), types });
    });
  }

  private add(l: Listener): () => void {
    if (this.completed) return () => {};
    this.listeners = [...this.listeners, l];
    this.count(l, 1);
    return () => {
      const i = this.listeners.indexOf(l);
      if (i < 0) return;
      this.listeners = this.listeners.filter((x) => x !== l);
      this.count(l, -1);
    };
  }

  private count(l: Listener, delta: 1 | -1): void {
    if (l.types === undefined) this.allTypes += delta;
    else for (const t of l.types) this.byType.set(t, (this.byType.get(t) ?? 0) + delta);
  }
}
