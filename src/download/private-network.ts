// src/download/private-network.ts: private networks are opt-in. A request whose host resolves to
// a loopback, private, link-local, CGNAT, unique-local, multicast or unspecified address is
// refused unless the crawl names that host: a start URL's host, a module's allowedDomains,
// `[download_config] allow_private_hosts`, or `allow_private_networks = true`. The check is on
// the addresses the transport is about to connect to (src/runtime/http-transport.ts validates
// every resolved address inside the connection's DNS lookup, so a name cannot resolve to a
// public address for a check and to a private one for the connect).
import { lookup } from "node:dns/promises";
import { addressRefusal } from "../runtime/http-transport.ts";
import { isIpLiteral } from "../runtime/ip-ranges.ts";
import type { JsonValue } from "../model/index.ts";
import { DownloadError } from "./download-error.ts";

/**
 * The start-URL host travels with each request of its chain in `meta.task.private_hosts` (as
 * the depth does: src/bounds/bounds.ts), so a worker that never saw the seed still knows the
 * crawl named the host. Only the engine writes it (from start(), not from pages).
 */
export const NAMED_HOSTS_KEY = "private_hosts";

/** The hosts named for the request chain `task` (a request's `meta.task`) belongs to. */
export function namedHostsOf(task: JsonValue): readonly string[] {
  if (task === null || typeof task !== "object" || Array.isArray(task)) return [];
  const list = task[NAMED_HOSTS_KEY];
  return Array.isArray(list) ? list.filter((h): h is string => typeof h === "string") : [];
}

/** Which hosts may resolve to non-public addresses. */
export interface PrivateNetworkPolicy {
  /** allow_private_networks = true: no check at all */
  readonly allowAll: boolean;
  /**
   * whether the crawl names `host` for `module` (any module when undefined), `carried` being the
   * hosts the request's chain was named for (namedHostsOf)
   */
  named(host: string, module?: string, carried?: readonly string[]): boolean;
}

function normalHost(host: string): string {
  return host.toLowerCase().replace(/^\[(.*)\]$/, "$1").replace(/\.$/, "");
}

const MAX_NAMED = 100_000;

/**
 * Hosts the crawls of this process named, per module: start-URL hosts and the module's
 * allowedDomains (with their subdomains), recorded as its requests are built
 * (src/modules/requests.ts). A worker that only downloads does not see seeds: name private
 * hosts there with allow_private_hosts or allowedDomains.
 */
class NamedHosts {
  private readonly hosts = new Map<string, Set<string>>();
  private readonly domains = new Map<string, Set<string>>();
  private size = 0;

  private add(map: Map<string, Set<string>>, module: string, host: string): void {
    let set = map.get(module);
    if (!set) map.set(module, (set = new Set()));
    if (this.size < MAX_NAMED && !set.has(host)) {
      set.add(host);
      this.size++;
    }
  }

  nameHost(module: string, host: string): void {
    this.add(this.hosts, module, normalHost(host));
  }

  nameDomain(module: string, domain: string): void {
    this.add(this.domains, module, normalHost(domain));
  }

  has(host: string, module?: string): boolean {
    const h = normalHost(host);
    const hostSets = module === undefined ? [...this.hosts.values()] : [this.hosts.get(module)];
    const domainSets = module === undefined ? [...this.domains.values()] : [this.domains.get(module)];
    if (hostSets.some((s) => s?.has(h))) return true;
    for (const set of domainSets) {
      if (!set || set.size === 0) continue;
      if (set.has(h)) return true;
      for (let i = h.indexOf("."); i >= 0; i = h.indexOf(".", i + 1)) if (set.has(h.slice(i + 1))) return true;
    }
    return false;
  }
}

/** The hosts named by the crawls running in this process. */
export const crawlNamedHosts = new NamedHosts();

function inDomains(host: string, domains: readonly string[] | undefined): boolean {
  if (!domains || domains.length === 0) return false;
  return domains.some((d) => {
    const n = normalHost(d);
    return host === n || host.endsWith(`.${n}`);
  });
}

/**
 * The policy of `[download_config]` (allow_private_hosts, allow_private_networks) plus the hosts
 * the crawl names: `allowedDomainsOf(module)` (the module's allowedDomains setting), the start-URL
 * hosts a request carries, and those seen by this process (crawlNamedHosts).
 */
export function privateNetworkPolicy(
  o: { allowPrivateHosts: readonly string[]; allowPrivateNetworks: boolean },
  allowedDomainsOf?: (module: string) => readonly string[] | undefined,
): PrivateNetworkPolicy {
  const listed = new Set(o.allowPrivateHosts.map(normalHost));
  return {
    allowAll: o.allowPrivateNetworks,
    named(host, module, carried) {
      const h = normalHost(host);
      if (listed.has(h) || (carried !== undefined && carried.some((c) => normalHost(c) === h))) return true;
      if (module !== undefined && allowedDomainsOf && inDomains(h, allowedDomainsOf(module))) return true;
      return crawlNamedHosts.has(h, module);
    },
  };
}

/**
 * Whether a request to `url` for `module` must have its addresses checked: the policy does not
 * allow everything and the crawl does not name the host.
 */
export function mustCheckAddresses(policy: PrivateNetworkPolicy | undefined, url: string, module?: string, carried?: readonly string[]): boolean {
  if (!policy || policy.allowAll) return false;
  try {
    return !policy.named(new URL(url).hostname, module || undefined, carried);
  } catch {
    return true;
  }
}

/** The refusal (a DownloadError, not retryable) for connecting `host` to `address`, or undefined for a public address. */
export function privateAddressRefusal(host: string, address: string): DownloadError | undefined {
  const refused = addressRefusal(host, address);
  return refused ? new DownloadError(refused.message, false) : undefined;
}

/**
 * Throws the refusal when `url`'s host is, or resolves to, a non-public address. For transports
 * that do not connect themselves (a proxy, which may resolve again: best effort).
 */
export async function checkResolvedHost(url: string): Promise<void> {
  const host = normalHost(new URL(url).hostname);
  const addresses = isIpLiteral(host) ? [host] : await lookup(host, { all: true }).then((list) => list.map((a) => a.address), () => []);
  for (const a of addresses) {
    const refused = privateAddressRefusal(host, a);
    if (refused) throw refused;
  }
}
