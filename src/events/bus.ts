import { filter, type Observable, Subject } from "rxjs";
import type { CrawlEvent, CrawlEventType, EventOf } from "./events.ts";

/** The EventBus: an RxJS Subject of CrawlEvents. Emitting with no subscriber costs one check. */
export class EventBus {
  private readonly subject = new Subject<CrawlEvent>();
  readonly events$: Observable<CrawlEvent> = this.subject.asObservable();

  emit(event: CrawlEvent): void {
    if (this.subject.observed) this.subject.next(event);
  }

  /** True if anyone listens: lets a hot path skip building an event nobody reads. */
  get observed(): boolean {
    return this.subject.observed;
  }

  on<T extends CrawlEventType>(type: T): Observable<EventOf<T>> {
    return this.events$.pipe(filter((e): e is EventOf<T> => e.type === type));
  }

  complete(): void {
    this.subject.complete();
  }
}
