import type { Priority } from "./priority.ts";
import { type Uuid, uuidv7 } from "./uuid.ts";

/** mocra's TaskModel: "crawl these modules for this account on this platform". */
export interface TaskModel {
  account: string;
  platform: string;
  /** null = every module */
  module: string[] | null;
  priority: Priority;
  runId: Uuid;
}

export function taskModel(init: Partial<TaskModel> = {}): TaskModel {
  return { account: "", platform: "", module: null, priority: "normal", runId: uuidv7(), ...init };
}
