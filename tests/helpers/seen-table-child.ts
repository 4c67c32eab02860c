// tests/helpers/seen-table-child.ts: a process (Node via tsx, or Deno) that publishes follow-ups
// to a journaled MemoryQueue (the standalone frontier, seen table included) until it is killed,
// for the kill -9 test of tests/seen-table.test.ts.
//   <dir> <start> <resume 0|1>: batches of 200 new keys (key i = md5 of "k<i>", URL "u<i>") from
//   key <start> on, plus 10 repeats of earlier keys each; prints "committed <next key>" once a
//   batch's publish resolved (durable)
import process from "node:process";
import { md5Hex, request } from "../../src/model/index.ts";
import { MemoryQueue } from "../../src/queue/memory-queue.ts";
import { FrontierJournal } from "../../src/state/frontier-journal.ts";

const [dir, startArg, resume] = process.argv.slice(2);
const options = { segmentBytes: 64 << 10, fsync: false };
const queue =
  resume === "1"
    ? (() => {
        const { journal, recovered } = FrontierJournal.recover(dir, options);
        return new MemoryQueue({ journal, recovered, hotEntries: 16 });
      })()
    : new MemoryQueue({ journal: FrontierJournal.create(dir, options), hotEntries: 16 });

let next = Number(startArg);
for (;;) {
  const items = [];
  for (let i = next; i < next + 200; i++) items.push({ message: request({ url: `u${i}` }), dedupKey: md5Hex(`k${i}`) });
  for (let r = 0; r < 10 && next > 0; r++) {
    const i = Math.floor(Math.random() * next);
    items.push({ message: request({ url: `u${i}` }), dedupKey: md5Hex(`k${i}`) });
  }
  await queue.publish("request", items);
  next += 200;
  console.log(`committed ${next}`);
}
