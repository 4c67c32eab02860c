// src/url/shape.ts: the shape of a URL, what a crawl trap repeats: host and path with every run
// of digits as "N", and the query's parameter names (sorted) with their digit runs as "N". A
// calendar's /cal?day=1, /cal?day=2, ... share one shape; so do /list?page=1, /list?page=2.

/** `host/path?names` of `url` with digit runs as N (the URL itself when it does not parse). */
export function urlShape(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return url;
  }
  const path = u.pathname.replace(/\d+/g, "N");
  const params = [...u.searchParams].map(([k, v]) => `${k.replace(/\d+/g, "N")}=${/^\d+$/.test(v) ? "N" : v.replace(/\d+/g, "N")}`).sort();
  return `${u.host}${path}${params.length > 0 ? `?${params.join("&")}` : ""}`;
}

/** A 32-bit FNV-1a hash of `texts` in sorted order, as hex (the same set gives the same hash). */
export function setHash(texts: Iterable<string>): string {
  let h = 0x811c9dc5;
  for (const t of [...texts].sort()) {
    for (let i = 0; i < t.length; i++) {
      h ^= t.charCodeAt(i);
      h = Math.imul(h, 0x01000193);
    }
    h ^= 10; // separator
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0).toString(16).padStart(8, "0");
}
