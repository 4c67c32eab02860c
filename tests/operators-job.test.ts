// mapJob / mergeJobs: the stage building block keeps mergeMap's meaning (concurrency bound,
// completion after the last pending result, errors, unsubscribe) while passing ready values on
// synchronously.
import { firstValueFrom, from, lastValueFrom, Subject, toArray } from "rxjs";
import { describe, expect, it } from "vitest";
import { failed, type Job, mapJob, type Message, ok, StageError } from "../operators/index.ts";
import { mergeJobs } from "../operators/job.ts";

const msg = {} as Message;
const tick = () => new Promise((r) => setTimeout(r, 1));

describe("mergeJobs", () => {
  it("passes plain values on synchronously and Promises when they settle", async () => {
    const got: number[] = [];
    const input = new Subject<number>();
    input.pipe(mergeJobs((n: number) => (n % 2 ? Promise.resolve(n) : n))).subscribe((n) => got.push(n));
    input.next(1);
    input.next(2);
    expect(got).toEqual([2]);
    await tick();
    expect(got).toEqual([2, 1]);
  });

  it("keeps at most `concurrency` Promises pending, starts the waiting ones in order, completes after the last", async () => {
    let running = 0;
    let peak = 0;
    const started: number[] = [];
    const out = await lastValueFrom(
      from([1, 2, 3, 4, 5, 6]).pipe(
        mergeJobs(async (n: number) => {
          started.push(n);
          peak = Math.max(peak, ++running);
          await new Promise((r) => setTimeout(r, 7 - n));
          running--;
          return n * 10;
        }, 2),
        toArray(),
      ),
    );
    expect(peak).toBe(2);
    expect(started).toEqual([1, 2, 3, 4, 5, 6]);
    expect([...out].sort((a, b) => a - b)).toEqual([10, 20, 30, 40, 50, 60]);
  });

  it("errors the stream on a throw or a rejection, as mergeMap does", async () => {
    await expect(lastValueFrom(from([1]).pipe(mergeJobs(() => Promise.reject(new Error("r")))))).rejects.toThrow("r");
    await expect(
      lastValueFrom(
        from([1]).pipe(
          mergeJobs((): number => {
            throw new Error("t");
          }),
        ),
      ),
    ).rejects.toThrow("t");
  });

  it("drops results that settle after unsubscribe", async () => {
    const got: number[] = [];
    let resolve!: (n: number) => void;
    const sub = from([1]).pipe(mergeJobs(() => new Promise<number>((r) => (resolve = r)))).subscribe((n) => got.push(n));
    sub.unsubscribe();
    resolve(1);
    await tick();
    expect(got).toEqual([]);
  });
});

describe("mapJob", () => {
  it("fails the job on a throw or rejection, keeps a StageError's failure, passes failed jobs through", async () => {
    const jobs: Job<number>[] = [ok(msg, 1), ok(msg, 2), ok(msg, 3), failed(msg, { stage: "x", reason: "before", retryable: true }), ok(msg, 4)];
    const out = await lastValueFrom(
      from(jobs).pipe(
        mapJob("s", (n: number) => {
          if (n === 1) throw new Error("sync");
          if (n === 2) return Promise.reject(new StageError({ stage: "s", reason: "stage", retryable: true }));
          if (n === 3) return Promise.resolve(30);
          return n * 10;
        }),
        toArray(),
      ),
    );
    const byValue = out.map((j) => (j.ok ? j.value : `${j.failure.stage}:${j.failure.reason}:${j.failure.retryable}`));
    expect(byValue.sort()).toEqual([30, 40, "s:Error: sync:false", "s:stage:true", "x:before:true"].sort());
    expect(await firstValueFrom(from([ok(msg, 5)]).pipe(mapJob("s", (n: number) => n + 1)))).toEqual(ok(msg, 6));
  });
});
