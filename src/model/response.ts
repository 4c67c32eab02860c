import type { CookieItem } from "./cookies.ts";
import { type ExecutionMark, executionMark } from "./execution-mark.ts";
import { type MetaData, metaData } from "./metadata.ts";
import type { Priority } from "./priority.ts";
import type { Request } from "./request.ts";
import { NIL_UUID, type Uuid } from "./uuid.ts";

/** mocra's Response (19 wire fields, same order). `id` equals the Request's id. */
/** The header carrying the final URL of a Response (mocra's Response has no url field). */
export const URL_HEADER = "x-mocra-url";

export interface Response {
  id: Uuid;
  platform: string;
  account: string;
  module: string;
  statusCode: number;
  cookies: CookieItem[];
  content: Uint8Array;
  /** set when the body was offloaded to blob storage (content is then empty) */
  storagePath: string | null;
  headers: Array<[string, string]>;
  taskRetryTimes: number;
  metadata: MetaData;
  downloadMiddleware: string[];
  dataMiddleware: string[];
  taskFinished: boolean;
  context: ExecutionMark;
  runId: Uuid;
  prefixRequest: Uuid;
  requestHash: string | null;
  priority: Priority;
}

export function response(init: Partial<Response> = {}): Response {
  return {
    id: NIL_UUID,
    platform: "",
    account: "",
    module: "",
    statusCode: 200,
    cookies: [],
    content: new Uint8Array(0),
    storagePath: null,
    headers: [],
    taskRetryTimes: 0,
    metadata: metaData(),
    downloadMiddleware: [],
    dataMiddleware: [],
    taskFinished: false,
    context: executionMark(),
    runId: NIL_UUID,
    prefixRequest: NIL_UUID,
    requestHash: null,
    priority: "normal",
    ...init,
  };
}

/** The Response skeleton mocra builds for a downloaded Request. */
export function responseFor(req: Request, init: Partial<Response>): Response {
  return response({
    id: req.id,
    platform: req.platform,
    account: req.account,
    module: req.module,
    taskRetryTimes: req.taskRetryTimes,
    metadata: req.meta,
    downloadMiddleware: req.downloadMiddleware,
    dataMiddleware: req.dataMiddleware,
    taskFinished: req.taskFinished,
    context: req.context,
    runId: req.runId,
    prefixRequest: req.id,
    priority: req.priority,
    ...init,
  });
}
