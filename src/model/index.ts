export * from "./cookies.ts";
export * from "./error-task.ts";
export * from "./execution-mark.ts";
export * from "./fingerprint.ts";
export * from "./headers.ts";
export * from "./metadata.ts";
export * from "./parser-task.ts";
export * from "./priority.ts";
export * from "./proxy.ts";
export * from "./request.ts";
export * from "./response.ts";
export * from "./task.ts";
export * from "./render.ts";
export * from "./uuid.ts";

import type { ErrorTaskModel } from "./error-task.ts";
import type { ParserTaskModel } from "./parser-task.ts";
import type { Request } from "./request.ts";
import type { Response } from "./response.ts";
import type { TaskModel } from "./task.ts";

/** The queue topics (mocra's topic bases) and the message type each carries. */
export interface TopicMessages {
  task: TaskModel;
  request: Request;
  response: Response;
  parser_task: ParserTaskModel;
  error_task: ErrorTaskModel;
  /** requests that need a browser (render "browser" | "auto"): read only by workers that can render */
  render: Request;
}
export type Topic = keyof TopicMessages;
export const TOPICS: readonly Topic[] = ["task", "request", "response", "parser_task", "error_task", "render"];

/** The id mocra shards by (`get_id()`): run_id for a TaskModel, id otherwise. */
export function messageId<K extends Topic>(topic: K, message: TopicMessages[K]): string {
  return topic === "task" ? (message as TaskModel).runId : (message as { id: string }).id;
}
