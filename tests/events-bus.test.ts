// The EventBus: who gets which event, which types are wanted (so a stage can skip building one), and a listener that throws.
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
});
