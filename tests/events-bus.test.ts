// The EventBus: who gets which event, which types are wanted (so a stage can skip building one), and a listener that throws.
import { filter, map, Subject } from "rxjs";
import { describe, expect, it, vi } from "vitest";
import { EventBus } from "../src/events/bus.ts";
import type { CrawlEvent } from "../src/events/events.ts";

describe("EventBus", () => {
  it("delivers to events$ subscribers, typed listeners and on(type), and says which types are wanted", () => {
    const bus = new EventBus();
    expect(bus.observed).toBe(false);
    const typed: CrawlEvent[] = [];
    const stop = bus.listen(["items_stored"], (e) => typed.push(e));
    expect(bus.observed).toBe(true);
    expect(bus.wants("items_stored")).toBe(true);
    expect(bus.wants("request_sent")).toBe(false);
    const leaders: number[] = [];
    const sub = bus.on("leader_elected").subscribe((e) => leaders.push(e.term));
    expect(bus.wants("request_sent")).toBe(false);
    bus.emit({ type: "request_sent", url: "http://h/a", module: "m", attempt: 1 });
    bus.emit({ type: "items_stored", module: "m", count: 2 });
    bus.emit({ type: "leader_elected", workerId: "w", term: 3 });
    expect(typed).toEqual([{ type: "items_stored", module: "m", count: 2 }]);
    expect(leaders).toEqual([3]);
    const all: string[] = [];
    const allSub = bus.events$.subscribe((e) => all.push(e.type));
    expect(bus.wants("request_sent")).toBe(true);
    bus.emit({ type: "request_sent", url: "http://h/b", module: "m", attempt: 1 });
    expect(all).toEqual(["request_sent"]);
    allSub.unsubscribe();
    sub.unsubscribe();
    stop();
    expect(bus.observed).toBe(false);
    expect(bus.wants("items_stored")).toBe(false);
  });

  it("a throwing listener does not fail the emitter nor starve the others; complete() completes subscribers", () => {
    vi.useFakeTimers();
    try {
      const bus = new EventBus();
      bus.listen(["warning"], () => {
        throw new Error("listener bug");
      });
      const seen: string[] = [];
      let completed = false;
      bus.events$.subscribe({ next: (e) => seen.push(e.type), complete: () => (completed = true) });
      expect(() => bus.emit({ type: "warning", message: "w" })).not.toThrow();
      expect(seen).toEqual(["warning"]);
      expect(() => vi.runAllTimers()).toThrow("listener bug"); // reported, as RxJS reports a throwing subscriber
      bus.complete();
      expect(completed).toBe(true);
      expect(bus.observed).toBe(false);
      let late = false;
      bus.events$.subscribe({ complete: () => (late = true) });
      expect(late).toBe(true);
    } finally {
      vi.useRealTimers();
    }
  });

  it("is an RxJS Subject: next, subscribe, pipe, complete and error behave as a Subject's", () => {
    const bus = new EventBus();
    expect(bus).toBeInstanceOf(Subject);
    const urls: string[] = [];
    const piped = bus
      .pipe(
        filter((e): e is Extract<CrawlEvent, { type: "request_sent" }> => e.type === "request_sent"),
        map((e) => e.url),
      )
      .subscribe((u) => urls.push(u));
    expect(bus.observed).toBe(true);
    // a raw subscriber reads every type, so every type is wanted while it is there
    expect(bus.wants("request_sent")).toBe(true);
    expect(bus.wants("items_stored")).toBe(true);
    bus.next({ type: "request_sent", url: "http://h/a", module: "m", attempt: 1 });
    bus.next({ type: "items_stored", module: "m", count: 1 });
    bus.emit({ type: "request_sent", url: "http://h/b", module: "m", attempt: 1 });
    expect(urls).toEqual(["http://h/a", "http://h/b"]);
    piped.unsubscribe();
    expect(bus.observed).toBe(false);
    expect(bus.wants("request_sent")).toBe(false);
    let completed = 0;
    bus.subscribe({ complete: () => completed++ });
    bus.on("items_stored").subscribe({ complete: () => completed++ });
    bus.complete();
    expect(completed).toBe(2);
    bus.next({ type: "items_stored", module: "m", count: 1 }); // after complete: ignored, as by a Subject
    let late = 0;
    bus.subscribe({ complete: () => late++ });
    expect(late).toBe(1);
    const failing = new EventBus();
    const errors: unknown[] = [];
    failing.subscribe({ error: (e) => errors.push(e) });
    failing.on("items_stored").subscribe({ error: (e) => errors.push(e) });
    failing.error(new Error("bus down"));
    expect(errors).toHaveLength(2);
  });
});
