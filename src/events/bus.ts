import { Observable, Subject } from "rxjs";
import type { CrawlEvent, CrawlEventType, EventOf } from "./events.ts";

interface Listener {
  next(event: CrawlEvent): void;
  complete?(): void;
  error?(err: unknown): void;
  /** the types it reads; undefined = every type */
  types?: ReadonlySet<CrawlEventType>;
}

/**
 * The EventBus: an RxJS `Subject<CrawlEvent>` (`next`, `subscribe`, `pipe`, `complete` behave as
 * a Subject's) that stays cheap on the hot path. A page emits several events, so besides the
 * Subject's own subscribers the bus keeps typed listeners in a plain array (`listen`, `on`):
 * emit() loops over it without a per-call closure, and the Subject's machinery runs only while
 * something subscribed to the bus itself. A stage asks `wants(type)` before it builds an event,
 * so an event nobody reads is never built.
 */
export class EventBus extends Subject<CrawlEvent> {
  /** replaced, never mutated, on (un)subscribe: an emit in progress keeps its array */
  private listeners: readonly Listener[] = [];
  /** how many listeners read each type (those that read every type are in `allTypes`) */
  private readonly byType = new Map<CrawlEventType, number>();
  private allTypes = 0;
  private completed = false;

  /** every event, as an Observable (the bus without its Subject side) */
  readonly events$: Observable<CrawlEvent> = this.asObservable();

  /** The Subject's next(): the same as emit(). */
  override next(event: CrawlEvent): void {
    this.emit(event);
  }

  emit(event: CrawlEvent): void {
    if (this.completed) return;
    // the Subject's subscribers (bus.subscribe, bus.pipe(...)): only when there are some
    if (super.observed) super.next(event);
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
  override get observed(): boolean {
    return this.listeners.length > 0 || super.observed;
  }

  /** True if some listener reads events of `type`: a per-page event is built only then. */
  wants(type: CrawlEventType): boolean {
    return this.allTypes > 0 || (this.byType.get(type) ?? 0) > 0 || super.observed;
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

  override complete(): void {
    for (const l of this.close()) l.complete?.();
    super.complete();
  }

  override error(err: unknown): void {
    for (const l of this.close()) l.error?.(err);
    super.error(err);
  }

  /** Stops the bus; returns the listeners it had. */
  private close(): readonly Listener[] {
    if (this.completed) return [];
    this.completed = true;
    const ls = this.listeners;
    this.listeners = [];
    this.byType.clear();
    this.allTypes = 0;
    return ls;
  }

  /** An Observable of the events of `types` (undefined: every type); it completes with the bus. */
  private stream<E extends CrawlEvent>(types?: ReadonlySet<CrawlEventType>): Observable<E> {
    return new Observable<E>((subscriber) => {
      if (this.completed) {
        subscriber.complete();
        return;
      }
      // subscriber.next catches and reports a throwing handler, as a Subject's subscribers do
      return this.add({ next: (e) => subscriber.next(e as E), complete: () => subscriber.complete(), error: (err) => subscriber.error(err), types });
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
