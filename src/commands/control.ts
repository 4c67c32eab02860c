import { parseArgs } from "node:util";
import { cacheRedisConnection } from "../config/index.ts";
import { RedisPauseControl } from "../control/pause.ts";
import { openConnection } from "../redis/connection.ts";
import { loadConfigFrom } from "./common.ts";
import { printable } from "../text/printable.ts";

const usageOf = (action: "pause" | "resume") => `usage: ${action} [--module NAME] [--config PATH]

${
  action === "pause"
    ? `Pauses every worker of the crawl (config name): none takes new work; what is in flight
finishes. With --module, only that module's messages are held back (re-queued every few
seconds until it is resumed).`
    : `Resumes the crawl paused with \`pause\`; with --module, that module (a paused module stays
paused until it is resumed by name).`
}

  --module NAME   only this module
  --config PATH   config file (default: ./config.toml if present, else built-in defaults)`;

export const pauseUsage = usageOf("pause");
export const resumeUsage = usageOf("resume");

/** `pause` / `resume`: set the fleet-wide flags in Redis (the workers follow within a moment). */
export function controlCommand(action: "pause" | "resume"): (argv: string[]) => Promise<number> {
  return async (argv) => {
    const { values } = parseArgs({
      args: argv,
      options: { config: { type: "string" }, module: { type: "string" }, help: { type: "boolean", short: "h" } },
    });
    if (values.help) {
      console.log(usageOf(action));
      return 0;
    }
    const config = await loadConfigFrom(values.config);
    const r = config.channelConfig.redis;
    const redis = await openConnection(cacheRedisConnection(config), "command", r.connectTimeoutMs, `${config.name}:control`);
    try {
      const control = new RedisPauseControl(redis, config.name);
      if (action === "pause") await control.pause(values.module);
      else await control.resume(values.module);
      const s = await control.state();
      const modules = s.modules.length > 0 ? `; paused modules: ${s.modules.map(printable).join(", ")}` : "";
      console.log(`crawl ${config.name}: ${s.all ? "paused" : "running"}${modules}`);
    } finally {
      redis.disconnect();
    }
    return 0;
  };
}
