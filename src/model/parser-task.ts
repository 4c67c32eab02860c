import { type ExecutionMark, executionMark } from "./execution-mark.ts";
import type { JsonValue } from "./metadata.ts";
import type { TaskModel } from "./task.ts";
import { NIL_UUID, type Uuid, uuidv7 } from "./uuid.ts";

/** mocra's ParserTaskModel: a parser's request to start (another) module's work. */
export interface ParserTaskModel {
  id: Uuid;
  accountTask: TaskModel;
  /** unix seconds */
  timestamp: number;
  metadata: JsonValue;
  context: ExecutionMark;
  runId: Uuid;
  prefixRequest: Uuid;
}

export function parserTaskModel(init: Partial<ParserTaskModel> & Pick<ParserTaskModel, "accountTask">): ParserTaskModel {
  return {
    id: uuidv7(),
    timestamp: Math.floor(Date.now() / 1000),
    metadata: null,
    context: executionMark(),
    runId: init.accountTask.runId,
    prefixRequest: NIL_UUID,
    ...init,
  };
}
