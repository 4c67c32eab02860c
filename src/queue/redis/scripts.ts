// src/queue/redis/scripts.ts: the queue's Lua scripts (the *.lua files beside this one; each
// file's header lists its KEYS and ARGV), loaded and called through src/redis/scripts.ts.

import { ScriptSet } from "../../redis/scripts.ts";

export const queueScripts = new ScriptSet("queue", new URL("./", import.meta.url), {
  publish: "publish.lua",
  ack: "ack.lua",
  readPlan: "read-plan.lua",
  deadLetter: "dead-letter.lua",
  retryLater: "retry-later.lua",
  moveDue: "move-due.lua",
  claim: "claim.lua",
  touch: "touch.lua",
  trim: "trim.lua",
  stats: "stats.lua",
  replay: "replay.lua",
  purge: "purge.lua",
});
