// The hot path's shortcuts keep their results: a follow-up the queue has seen gets no Request
// (and counts as a duplicate), the fingerprint computed from a seed is the one its Request has,
// and text extraction's whitespace collapse is `replace(/\s+/g, " ").trim()`.
import { describe, expect, it } from "vitest";
import { collapse } from "../src/html/document.ts";
import { fingerprint, fingerprintFields, response } from "../src/model/index.ts";
import { defineModule, type Seed } from "../src/modules/define.ts";
import { URL_HEADER } from "../src/modules/page.ts";
import { buildRequest, type RequestOrigin, resolveSeed, seedFingerprint } from "../src/modules/requests.ts";
import { runParse } from "../src/modules/run-parse.ts";
import { MemoryQueue } from "../src/queue/memory-queue.ts";
import { enqueueRequests } from "../src/queue/enqueue-requests.ts";

const module = defineModule({
  name: "fp",
  start: () => [],
  steps: {
    list(_page, ctx) {
      ctx.follow(["/a", "/b", "http://h.test/c?x=1", { url: "/d", method: "POST", json: { q: 1 } }, { url: "/e", dedup: false }], { step: "item" });
    },
    item() {},
  },
});
const origin: RequestOrigin = {
  task: { account: "acc", platform: "plat", priority: "normal", runId: "r" },
  module,
  settings: { headers: { "x-h": "1" } },
  stepIdx: 0,
  baseUrl: "http://h.test/list/0",
  timeoutSecs: 30,
};

describe("seed fingerprints", () => {
  it("are the fingerprints of the Requests built from the seeds", () => {
    const seeds: Seed[] = [
      "/item/1",
      "http://H.test/./x/../item/2?b=2&a=1#frag",
      { url: "/p", method: "post", body: "a=1" },
      { url: "/j", json: { q: [1, "x"] }, headers: { accept: "x" } },
      { url: "/j0", json: null },
      { url: "/f", form: { a: "1" }, data: { d: 1 }, step: "item", priority: "high" },
      { url: "/b", body: new Uint8Array([1, 2, 3]) },
    ];
    for (const seed of seeds) {
      const resolved = resolveSeed(seed, origin);
      if (typeof resolved === "string") throw new Error(resolved);
      const fp = seedFingerprint(resolved, origin);
      const req = buildRequest(resolved, origin);
      // recomputed from the built Request's own fields, not from any remembered value
      expect(fp).toBe(fingerprintFields(req));
      expect(fingerprint(req)).toBe(fp);
    }
    // the same link under another account, platform or module: its own fingerprint, memo or not
    for (const other of [{ ...origin, task: { ...origin.task, account: "acc2" } }, { ...origin, task: { ...origin.task, platform: "p2" } }, { ...origin, module: defineModule({ name: "fp2", start: () => [], parse() {} }) }]) {
      for (let round = 0; round < 2; round++) {
        const a = resolveSeed("/item/1", other);
        if (typeof a === "string") throw new Error(a);
        expect(seedFingerprint(a, other)).toBe(fingerprintFields(buildRequest(a, other)));
      }
    }
    const noDedup = resolveSeed({ url: "/n", dedup: false }, origin);
    if (typeof noDedup === "string") throw new Error(noDedup);
    expect(seedFingerprint(noDedup, origin)).toBeUndefined();
  });

  it("a remembered fingerprint is not reused once the URL changes", () => {
    const resolved = resolveSeed("/item/9", origin);
    if (typeof resolved === "string") throw new Error(resolved);
    const req = buildRequest(resolved, origin, seedFingerprint(resolved, origin));
    const before = fingerprint(req);
    req.url = "http://h.test/item/10";
    expect(fingerprint(req)).not.toBe(before);
    expect(fingerprint(req)).toBe(fingerprintFields(req));
  });
});

describe("follow-ups the queue has seen", () => {
  it("get no Request, count as duplicates, and the rest enqueue as before", async () => {
    const queue = new MemoryQueue();
    const page = response({ module: "fp", content: new TextEncoder().encode("<p>x</p>"), headers: [[URL_HEADER, "http://h.test/list/0"]], account: "acc", platform: "plat", runId: "r" });
    const first = await runParse(module, page, {}, 30, { seenBefore: (k) => queue.seenBefore(k) });
    expect(first.requests.map((r) => r.url)).toEqual(["http://h.test/a", "http://h.test/b", "http://h.test/c?x=1", "http://h.test/d", "http://h.test/e"]);
    expect(first.seenBefore ?? 0).toBe(0);
    expect(await enqueueRequests(queue, first.requests)).toEqual({ accepted: 5, duplicates: 0 });

    // the same page again: every deduplicated follow-up is known; dedup: false ones always go out
    const again = await runParse(module, page, {}, 30, { seenBefore: (k) => queue.seenBefore(k) });
    expect(again.requests.map((r) => r.url)).toEqual(["http://h.test/e"]);
    expect(again.seenBefore).toBe(4);
    expect(await enqueueRequests(queue, again.requests)).toEqual({ accepted: 1, duplicates: 0 });

    // without the check, the queue drops the same four at enqueue: same outcome
    const unchecked = await runParse(module, page, {}, 30);
    expect(unchecked.requests).toHaveLength(5);
    expect(await enqueueRequests(queue, unchecked.requests)).toEqual({ accepted: 1, duplicates: 4 });
    await queue.close();
  });
});

describe("the known-link memo", () => {
  it("gives what a fresh resolution gives: per scope, URL rules, allowed domains, link rules and request defaults", async () => {
    const links = ["http://h.test/a?utm_source=x&b=1", "http://other.test/o", "https://h.test/s", "http://h.test/a?b=1", "/rel"];
    const followed = defineModule({
      name: "memo",
      start: () => [],
      steps: {
        list(_page, ctx) {
          ctx.follow(links, { step: "item" });
          ctx.follow(links, { step: "item", method: "POST" });
          ctx.follow(links, { step: "item", dedup: false });
          ctx.enqueueLinks({ strategy: "same-host", exclude: ["**/s"] });
        },
        item() {},
      },
    });
    const html = links.map((l) => `<a href="${l}">x</a>`).join("");
    const pageOn = (account: string) =>
      response({ module: "memo", content: new TextEncoder().encode(html), headers: [[URL_HEADER, "http://h.test/list/0"], ["content-type", "text/html"]], account, platform: "plat", runId: "r" });
    const variants: Array<{ account: string; settings: Record<string, unknown> }> = [
      { account: "acc", settings: {} },
      { account: "acc", settings: { allowedDomains: ["other.test"] } },
      { account: "acc", settings: { stripParams: [] } },
      { account: "acc2", settings: {} },
    ];
    const summary = (o: Awaited<ReturnType<typeof runParse>>) => ({
      requests: o.requests.map((r) => `${r.method} ${r.url} ${r.hashStr === null ? fingerprint(r) : "unique"}`),
      dropped: o.dropped,
      seenBefore: o.seenBefore ?? 0,
    });
    // the reference: no seenBefore (so no memo), every follow-up built and deduplicated by the queue
    const reference = new Map<string, { first: ReturnType<typeof summary>; second: ReturnType<typeof summary>; duplicates: number }>();
    for (const v of variants) {
      const queue = new MemoryQueue();
      const first = await runParse(followed, pageOn(v.account), v.settings, 30);
      await enqueueRequests(queue, first.requests);
      const second = await runParse(followed, pageOn(v.account), v.settings, 30);
      const { duplicates } = await enqueueRequests(queue, second.requests);
      reference.set(JSON.stringify(v), { first: summary(first), second: summary(second), duplicates });
      await queue.close();
    }
    // with the memo: cold for the variant, then warm; then again after the other variants warmed it
    for (let round = 0; round < 2; round++) {
      for (const v of variants) {
        const ref = reference.get(JSON.stringify(v))!;
        const queue = new MemoryQueue();
        const seen = (k: string) => queue.seenBefore(k);
        const first = await runParse(followed, pageOn(v.account), v.settings, 30, { seenBefore: seen });
        expect(summary(first)).toEqual(ref.first);
        await enqueueRequests(queue, first.requests);
        const second = await runParse(followed, pageOn(v.account), v.settings, 30, { seenBefore: seen });
        const { duplicates } = await enqueueRequests(queue, second.requests);
        expect(second.dropped).toEqual(ref.second.dropped);
        expect((second.seenBefore ?? 0) + duplicates).toBe(ref.duplicates);
        expect(summary(second).requests).toEqual(ref.second.requests.filter((r) => r.endsWith("unique")));
        await queue.close();
      }
    }
    expect(reference.get(JSON.stringify(variants[3]))!.first.requests).not.toEqual(reference.get(JSON.stringify(variants[0]))!.first.requests);
  });
});

describe("collapse", () => {
  it("equals replace(/\\s+/g, ' ').trim() on random whitespace mixes and on every UTF-16 code unit", () => {
    const pieces = ["a", "bc", " ", "  ", "\n", "\t", "\r\n", "\v", "\f", "\u00a0", "\u2003", "\u2028", "\ufeff", "\u3000", "\u200b", "\u0085", "\u180e", "é"];
    let seed = 7;
    const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n);
    for (let t = 0; t < 20_000; t++) {
      let s = "";
      for (let i = rnd(12); i > 0; i--) s += pieces[rnd(pieces.length)];
      expect(collapse(s)).toBe(s.replace(/\s+/g, " ").trim());
    }
    for (let c = 0; c < 0x10000; c++) {
      const s = ` x${String.fromCharCode(c)}${String.fromCharCode(c)}y `;
      if (collapse(s) !== s.replace(/\s+/g, " ").trim()) expect(`U+${c.toString(16)}`).toBe("collapsed like \\s");
    }
  });
});
