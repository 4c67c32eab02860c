/** Any JSON value. mocra carries these as strings holding JSON on the wire; codecs convert. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** mocra's MetaData: four JSON values (each a JSON string on the wire). */
export interface MetaData {
  task: JsonValue;
  loginInfo: JsonValue;
  moduleConfig: JsonValue;
  traitMeta: JsonValue;
}

export function metaData(init: Partial<MetaData> = {}): MetaData {
  return { task: null, loginInfo: null, moduleConfig: null, traitMeta: null, ...init };
}
