// src/runtime/ip-ranges.ts: which IP addresses are not on the public internet. The download path
// refuses them unless the crawl names the host (src/download/private-network.ts).

/** An IPv4 address in dotted form as a 32-bit number, or undefined. */
function ipv4(text: string): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (!m) return undefined;
  const parts = m.slice(1).map(Number);
  if (parts.some((p) => p > 255)) return undefined;
  return ((parts[0] << 24) >>> 0) + (parts[1] << 16) + (parts[2] << 8) + parts[3];
}

// [first address, prefix length, what it is]
const V4_RANGES: ReadonlyArray<readonly [string, number, string]> = [
  ["0.0.0.0", 8, "unspecified (\"this network\")"],
  ["10.0.0.0", 8, "private (10/8)"],
  ["100.64.0.0", 10, "shared CGNAT (100.64/10)"],
  ["127.0.0.0", 8, "loopback"],
  ["169.254.0.0", 16, "link-local (169.254/16, incl. cloud metadata)"],
  ["172.16.0.0", 12, "private (172.16/12)"],
  ["192.0.0.0", 24, "IETF protocol assignments (192.0.0/24)"],
  ["192.168.0.0", 16, "private (192.168/16)"],
  ["198.18.0.0", 15, "benchmarking (198.18/15)"],
  ["224.0.0.0", 4, "multicast"],
  ["240.0.0.0", 4, "reserved (240/4, incl. broadcast)"],
];
const V4_TABLE = V4_RANGES.map(([a, bits, what]) => ({ base: ipv4(a)!, mask: bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0, what }));

function v4Kind(n: number): string | undefined {
  for (const r of V4_TABLE) if (((n & r.mask) >>> 0) === r.base) return r.what;
  return undefined;
}

/** An IPv6 address as 8 16-bit groups (embedded dotted IPv4 tail allowed), or undefined. */
function ipv6(text: string): number[] | undefined {
  let t = text.replace(/^\[|\]$/g, "").toLowerCase();
  const zone = t.indexOf("%");
  if (zone >= 0) t = t.slice(0, zone);
  const tail = /(\d+\.\d+\.\d+\.\d+)$/.exec(t);
  if (tail) {
    const n = ipv4(tail[1]);
    if (n === undefined) return undefined;
    t = `${t.slice(0, -tail[1].length)}${(n >>> 16).toString(16)}:${(n & 0xffff).toString(16)}`;
  }
  const halves = t.split("::");
  if (halves.length > 2) return undefined;
  const parse = (s: string) => (s === "" ? [] : s.split(":").map((g) => (/^[0-9a-f]{1,4}$/.test(g) ? parseInt(g, 16) : NaN)));
  const head = parse(halves[0]);
  const rest = halves.length === 2 ? parse(halves[1]) : [];
  const fill = halves.length === 2 ? 8 - head.length - rest.length : 0;
  const groups = [...head, ...new Array<number>(Math.max(fill, 0)).fill(0), ...rest];
  if (groups.length !== 8 || groups.some(Number.isNaN) || (halves.length === 2 && fill < 1)) return undefined;
  return groups;
}

function v6Kind(g: number[]): string | undefined {
  const zeros = (n: number) => g.slice(0, n).every((x) => x === 0);
  const v4 = (g[6] << 16) + g[7];
  if (zeros(8)) return "unspecified (::)";
  if (zeros(7) && g[7] === 1) return "loopback (::1)";
  // IPv4-mapped (::ffff:a.b.c.d), IPv4-compatible (::a.b.c.d), NAT64 (64:ff9b::a.b.c.d): the IPv4 address decides
  if ((zeros(5) && g[5] === 0xffff) || zeros(6) || (g[0] === 0x64 && g[1] === 0xff9b && g.slice(2, 6).every((x) => x === 0))) {
    const k = v4Kind(v4 >>> 0);
    return k ? `${k}, as IPv6` : undefined;
  }
  if (g[0] === 0x2002) {
    const k = v4Kind(((g[1] << 16) + g[2]) >>> 0);
    return k ? `${k}, in 6to4` : undefined;
  }
  if ((g[0] & 0xfe00) === 0xfc00) return "unique-local (fc00::/7)";
  if ((g[0] & 0xffc0) === 0xfe80) return "link-local (fe80::/10)";
  if ((g[0] & 0xffc0) === 0xfec0) return "site-local (fec0::/10)";
  if ((g[0] & 0xff00) === 0xff00) return "multicast (ff00::/8)";
  return undefined;
}

/**
 * What kind of non-public address `ip` is ("loopback", "private (10/8)", ...), or undefined for
 * a public address or text that is not an IP address. IPv6 forms that embed an IPv4 address
 * (mapped, compatible, NAT64, 6to4) are judged by that address.
 */
export function nonPublicAddress(ip: string): string | undefined {
  const n = ipv4(ip);
  if (n !== undefined) return v4Kind(n);
  const g = ipv6(ip);
  return g ? v6Kind(g) : undefined;
}

/** Whether `host` (a URL's hostname: IPv6 in brackets or not) is an IP address literal. */
export function isIpLiteral(host: string): boolean {
  return ipv4(host) !== undefined || ipv6(host) !== undefined;
}
