import { type ExecutionMark, executionMark } from "./execution-mark.ts";
import type { JsonValue } from "./metadata.ts";
import type { TaskModel } from "./task.ts";
import { NIL_UUID, type Uuid, uuidv7 } from "./uuid.ts";

/** mocra's ErrorTaskModel: a failure reported for a task. */
export interface ErrorTaskModel {
  id: Uuid;
  accountTask: TaskModel;
  errorMsg: string;
  timestamp: number;
  metadata: JsonValue;
  context: ExecutionMark;
  runId: Uuid;
  prefixRequest: Uuid;
}

export function errorTaskModel(
  init: Partial<ErrorTaskModel> & Pick<ErrorTaskModel, "accountTask" | "errorMsg">,
): ErrorTaskModel {
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
