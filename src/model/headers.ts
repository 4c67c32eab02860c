/** mocra's Headers: an ordered list of key/value pairs (wire: {"headers":[{"key","value"}]}). */
export interface HeaderItem {
  key: string;
  value: string;
}

export function headersFromRecord(record: Record<string, string> | undefined): HeaderItem[] {
  return record ? Object.entries(record).map(([key, value]) => ({ key, value })) : [];
}
