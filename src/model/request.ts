import type { CookieItem } from "./cookies.ts";
import { type ExecutionMark, executionMark } from "./execution-mark.ts";
import type { HeaderItem } from "./headers.ts";
import { type JsonValue, type MetaData, metaData } from "./metadata.ts";
import type { Priority } from "./priority.ts";
import type { ProxyEnum } from "./proxy.ts";
import { NIL_UUID, type Uuid, uuidv7 } from "./uuid.ts";

/** mocra's Request (32 wire fields, same order). */
export interface Request {
  id: Uuid;
  platform: string;
  account: string;
  module: string;
  url: string;
  method: string;
  headers: HeaderItem[];
  cookies: CookieItem[];
  retryTimes: number;
  taskRetryTimes: number;
  useNewClient: boolean;
  /** seconds */
  timeout: number;
  meta: MetaData;
  params: Array<[string, string]> | null;
  json: JsonValue | undefined;
  body: Uint8Array | null;
  form: JsonValue | undefined;
  cacheHeaders: string[] | null;
  proxy: ProxyEnum | null;
  limitId: string;
  downloadMiddleware: string[];
  dataMiddleware: string[];
  taskFinished: boolean;
  timeSleepSecs: number | null;
  context: ExecutionMark;
  runId: Uuid;
  prefixRequest: Uuid;
  hashStr: string | null;
  enableCache: boolean;
  enableLocker: boolean | null;
  downloader: string;
  priority: Priority;
}

/**
 * A Request with mocra's defaults. `json` and `form` use `undefined` for "None" so that a
 * JSON `null` payload (Some(Value::Null)) stays distinguishable.
 */
export function request(init: Partial<Request> & Pick<Request, "url">): Request {
  // defaults that cost something (a uuid, nested objects) only when init does not bring its own
  return {
    id: init.id ?? uuidv7(),
    platform: "",
    account: "",
    module: "",
    method: "GET",
    headers: [],
    cookies: [],
    retryTimes: 0,
    taskRetryTimes: 0,
    useNewClient: false,
    timeout: 30,
    meta: init.meta ?? metaData(),
    params: null,
    json: undefined,
    body: null,
    form: undefined,
    cacheHeaders: null,
    proxy: null,
    limitId: "",
    downloadMiddleware: [],
    dataMiddleware: [],
    taskFinished: false,
    timeSleepSecs: null,
    context: init.context ?? executionMark(),
    runId: NIL_UUID,
    prefixRequest: NIL_UUID,
    hashStr: null,
    enableCache: false,
    enableLocker: null,
    downloader: "request_downloader",
    priority: "normal",
    ...init,
  };
}
