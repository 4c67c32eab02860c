// src/sync/scripts.ts: the coordination Lua scripts (the *.lua files beside this one; each
// file's header lists its KEYS and ARGV), loaded and called through src/redis/scripts.ts.

import { ScriptSet } from "../redis/scripts.ts";

export const syncScripts = new ScriptSet("sync", new URL("./", import.meta.url), {
  lockAcquire: "lock-acquire.lua",
  lockRenew: "lock-renew.lua",
  lockRelease: "lock-release.lua",
  lockFencedSet: "lock-fenced-set.lua",
  leaderAcquire: "leader-acquire.lua",
  leaderResign: "lock-release.lua",
});
