// src/observe/metrics.ts: the crawl's Prometheus metrics and the live figures of the dashboard,
// kept by one EventBus subscriber. Stages never call into this: they emit events, and gauges
// (backlog, credit, pause, domains) are read when scraped. Label values are bounded: stages,
// topics, priorities, HTTP statuses, module names, and the top-N politeness keys.

import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { PauseState } from "../control/pause.ts";
import type { EventBus } from "../events/bus.ts";
import type { CrawlEvent, CrawlEventType } from "../events/events.ts";
import { PRIORITIES, TOPICS } from "../model/index.ts";
import type { QueueStats } from "../queue/queue.ts";
import type { CreditMeter } from "./credit.ts";
import { printable } from "../text/printable.ts";

/** What a failure was, for `mocra_errors_total` and the dashboard's errors by kind. */
export function errorKind(reason: string): { kind: string; code: string } {
  const http = /^HTTP (\d{3})\b/.exec(reason);
  if (http) return { kind: "http", code: http[1]! };
  if (/timed? ?out|timeout/i.test(reason)) return { kind: "timeout", code: "" };
  if (/^parse failed/.test(reason)) return { kind: "parse", code: "" };
  if (/^sink failed/.test(reason)) return { kind: "sink", code: "" };
  if (/^enqueue failed/.test(reason)) return { kind: "queue", code: "" };
  if (/robots/i.test(reason)) return { kind: "robots", code: "" };
  if (/ECONN|ENOTFOUND|EAI_AGAIN|socket|network|fetch failed|connect/i.test(reason)) return { kind: "network", code: "" };
  return { kind: "other", code: "" };
}

/** The politeness state of one rate-limit key (a domain by default). */
export interface DomainState {
  key: string;
  /** current req/s after back-off (0 = unlimited or never backed off) */
  rate: number;
  /** back-off factor, 1 = full configured rate */
  factor: number;
  /** unix ms until which the key is held back (Retry-After, open circuit); 0 = not */
  suspendedUntil: number;
  circuitOpen: boolean;
  /** rate-limit waits seen */
  waits: number;
  /** politeness events seen (how the top-N is ranked) */
  events: number;
}

export interface MetricsOptions {
  /** this process's node id (the `node` label of mocra_node_up) */
  nodeId: string;
  credit?: CreditMeter;
  /** queue depths, read when scraped */
  queueStats?: () => Promise<QueueStats>;
  pauseState?: () => Promise<PauseState>;
  /** politeness keys exported as labels (default 20) */
  topDomains?: number;
}

const MAX_DOMAINS = 2000;

/**
 * Increments of one label set of a Counter, kept as a plain number between scrapes and added to
 * the Counter when it is read: the events of every page then cost an addition each, not a label
 * hash and the garbage of prom-client's `inc` (measured in a crawl: ~7 % of the CPU per page).
 */
interface PendingCount {
  readonly labels: Partial<Record<string, string>>;
  n: number;
}

function pendingCount(labels: Partial<Record<string, string>>): PendingCount {
  return { labels, n: 0 };
}

/** The event types EngineMetrics records (its switch in record()). */
const RECORDED: readonly CrawlEventType[] = [
  "response_received",
  "page_rendered",
  "page_parsed",
  "items_stored",
  "task_received",
  "requests_enqueued",
  "http_error",
  "retry_scheduled",
  "deferred",
  "dead_lettered",
  "rate_limited",
  "rate_backoff",
  "rate_recovered",
  "key_suspended",
  "circuit_opened",
  "circuit_closed",
];

/** Adds the pending counts to `counter` (its `collect`, run when it is read). */
function flushCounts(counter: Counter<string>, counts: Iterable<PendingCount>): void {
  for (const c of counts) {
    if (c.n === 0) continue;
    counter.inc(c.labels, c.n);
    c.n = 0;
  }
}

export class EngineMetrics {
  readonly registry = new Registry();
  /** totals for the dashboard */
  readonly totals = { pages: 0, items: 0, errors: 0, retries: 0, deferrals: 0, deadLetters: 0 };
  private readonly errorCounts = new Map<string, { stage: string; kind: string; code: string; count: number }>();
  private readonly domains = new Map<string, DomainState>();
  private readonly unlisten: () => void;
  /** the per-page label sets of mocra_throughput_total, counted between scrapes */
  private readonly pageCounts = {
    downloadOk: pendingCount({ stage: "download", result: "ok" }),
    downloadHttpError: pendingCount({ stage: "download", result: "http_error" }),
    parseOk: pendingCount({ stage: "parse", result: "ok" }),
    sinkOk: pendingCount({ stage: "sink", result: "ok" }),
    taskOk: pendingCount({ stage: "task", result: "ok" }),
    enqueueOk: pendingCount({ stage: "enqueue", result: "ok" }),
    enqueueDuplicate: pendingCount({ stage: "enqueue", result: "duplicate" }),
  };
  /** mocra_items_stored_total by module, counted between scrapes */
  private readonly itemCounts = new Map<string, PendingCount>();

  private readonly throughput: Counter<"stage" | "result">;
  private readonly latency: Histogram<"stage">;
  private readonly latencyOf: Record<"download" | "parse" | "sink", { observe(seconds: number): void }>;
  private readonly errorsTotal: Counter<"stage" | "kind" | "code">;
  private readonly itemsStored: Counter<"module">;
  private readonly retries: Counter<"topic">;
  private readonly deferrals: Counter<"topic">;
  private readonly deadLetters: Counter<"topic">;
  private readonly rendered: Counter<"module" | "learned">;

  constructor(
    bus: EventBus,
    private readonly options: MetricsOptions,
  ) {
    const registers = [this.registry];
    const pageCounts = Object.values(this.pageCounts);
    const itemCounts = this.itemCounts;
    this.throughput = new Counter({
      name: "mocra_throughput_total",
      help: "Messages through a stage, by result.",
      labelNames: ["stage", "result"],
      registers,
      collect() {
        flushCounts(this, pageCounts);
      },
    });
    this.latency = new Histogram({
      name: "mocra_latency_seconds",
      help: "Time spent in a stage (download: request to response; parse: the module's parse; sink: items made durable).",
      labelNames: ["stage"],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.errorsTotal = new Counter({ name: "mocra_errors_total", help: "Failed attempts, by stage, kind and HTTP status code.", labelNames: ["stage", "kind", "code"], registers });
    this.itemsStored = new Counter({
      name: "mocra_items_stored_total",
      help: "Items made durable by the sink.",
      labelNames: ["module"],
      registers,
      collect() {
        flushCounts(this, itemCounts.values());
      },
    });
    this.retries = new Counter({ name: "mocra_retries_total", help: "Failed messages re-queued with back-off.", labelNames: ["topic"], registers });
    this.deferrals = new Counter({ name: "mocra_deferrals_total", help: "Messages re-queued by a politeness or pause wait (not failed attempts).", labelNames: ["topic"], registers });
    this.deadLetters = new Counter({ name: "mocra_dead_letters_total", help: "Messages moved to the dead letters.", labelNames: ["topic"], registers });
    this.rendered = new Counter({
      name: "mocra_pages_rendered_total",
      help: 'Pages rendered in the browser (learned="true": render = "auto" rendered without checking, the URL pattern being known to need it).',
      labelNames: ["module", "learned"],
      registers,
    });
    for (const stage of ["download", "parse", "sink"]) this.latency.zero({ stage });
    // bound once: an observe then builds no label object and closure per page
    this.latencyOf = { download: this.latency.labels("download"), parse: this.latency.labels("parse"), sink: this.latency.labels("sink") };

    new Gauge({
      name: "mocra_node_up",
      help: "1 while this node runs.",
      labelNames: ["node"],
      registers,
      collect() {
        this.set({ node: options.nodeId }, 1);
      },
    });
    const credit = options.credit;
    new Gauge({
      name: "mocra_inflight",
      help: "Messages taken from the queue by this node and not yet settled (credit in use), by source topic.",
      labelNames: ["stage"],
      registers,
      collect() {
        for (const c of credit?.read() ?? []) this.set({ stage: c.topic }, c.inUse);
      },
    });
    new Gauge({
      name: "mocra_credit_limit",
      help: "Credit (prefetch) of this node's sources, by topic.",
      labelNames: ["stage"],
      registers,
      collect() {
        for (const c of credit?.read() ?? []) this.set({ stage: c.topic }, c.limit);
      },
    });
    const queueStats = options.queueStats;
    if (queueStats) {
      // one read of the queue per scrape, shared by the gauges below
      let read: { at: number; stats: Promise<QueueStats | undefined> } | undefined;
      const stats = () => {
        if (!read || Date.now() - read.at > 500) read = { at: Date.now(), stats: queueStats().catch(() => undefined) };
        return read.stats;
      };
      const queueGauge = (name: string, help: string, labelNames: string[], set: (g: Gauge<string>, s: QueueStats) => void) =>
        new Gauge({
          name,
          help,
          labelNames,
          registers,
          async collect() {
            const s = await stats();
            if (s) set(this, s);
          },
        });
      queueGauge("mocra_backlog_depth", "Messages waiting to be read, by topic and priority.", ["topic", "priority"], (g, s) => {
        for (const t of TOPICS) for (const p of PRIORITIES) g.set({ topic: t, priority: p }, s[t].ready[p]);
      });
      queueGauge("mocra_pending", "Messages delivered and not yet settled (every worker), by topic.", ["topic"], (g, s) => {
        for (const t of TOPICS) g.set({ topic: t }, s[t].inFlight);
      });
      queueGauge("mocra_delayed", "Retries waiting for their due time, by topic.", ["topic"], (g, s) => {
        for (const t of TOPICS) g.set({ topic: t }, s[t].delayed);
      });
      queueGauge("mocra_dead_letters", "Dead letters held, by topic.", ["topic"], (g, s) => {
        for (const t of TOPICS) g.set({ topic: t }, s[t].dead);
      });
      new Gauge({
        name: "mocra_backlog_scrape_ok",
        help: "1 if the queue depths could be read at this scrape.",
        registers,
        async collect() {
          this.set((await stats()) ? 1 : 0);
        },
      });
    }
    const pauseState = options.pauseState;
    if (pauseState) {
      new Gauge({
        name: "mocra_paused",
        help: "1 while paused: scope \"all\" or a module.",
        labelNames: ["scope"],
        registers,
        async collect() {
          this.reset();
          const s = await pauseState().catch(() => undefined);
          if (!s) return;
          this.set({ scope: "all" }, s.all ? 1 : 0);
          for (const m of s.modules) this.set({ scope: m }, 1);
        },
      });
    }
    const top = () => this.topDomains(options.topDomains ?? 20);
    const domainGauge = (name: string, help: string, value: (d: DomainState) => number) =>
      new Gauge({
        name,
        help,
        labelNames: ["domain"],
        registers,
        collect() {
          this.reset();
          for (const d of top()) this.set({ domain: d.key }, value(d));
        },
      });
    domainGauge("mocra_domain_rate", "Current request rate of a politeness key after back-off (req/s; top keys).", (d) => d.rate);
    domainGauge("mocra_domain_backoff_factor", "Back-off factor of a politeness key (1 = configured rate; top keys).", (d) => d.factor);
    domainGauge("mocra_domain_suspended", "1 while a politeness key is held back (Retry-After, open circuit; top keys).", (d) => (d.suspendedUntil > Date.now() ? 1 : 0));
    domainGauge("mocra_domain_circuit_open", "1 while a politeness key's circuit is open (top keys).", (d) => (d.circuitOpen ? 1 : 0));

    this.unlisten = bus.listen(RECORDED, (e) => this.record(e));
  }

  private record(e: CrawlEvent): void {
    switch (e.type) {
      case "response_received":
        this.totals.pages++;
        (e.status < 400 ? this.pageCounts.downloadOk : this.pageCounts.downloadHttpError).n++;
        this.latencyOf.download.observe(e.ms / 1000);
        break;
      case "page_rendered":
        this.rendered.inc({ module: e.module, learned: String(e.learned) });
        break;
      case "page_parsed":
        this.pageCounts.parseOk.n++;
        this.latencyOf.parse.observe(e.ms / 1000);
        break;
      case "items_stored":
        this.totals.items += e.count;
        this.itemCount(e.module).n += e.count;
        this.pageCounts.sinkOk.n++;
        if (e.ms !== undefined) this.latencyOf.sink.observe(e.ms / 1000);
        break;
      case "task_received":
        this.pageCounts.taskOk.n++;
        break;
      case "requests_enqueued":
        this.pageCounts.enqueueOk.n += e.accepted;
        this.pageCounts.enqueueDuplicate.n += e.duplicates;
        break;
      case "http_error":
        this.countError("download", "http", String(e.status));
        break;
      case "retry_scheduled":
        this.totals.retries++;
        this.retries.inc({ topic: e.topic });
        this.failure(e.stage ?? "unknown", e.reason);
        break;
      case "deferred":
        this.totals.deferrals++;
        this.deferrals.inc({ topic: e.topic });
        break;
      case "dead_lettered":
        this.totals.deadLetters++;
        this.deadLetters.inc({ topic: e.topic });
        this.failure(e.stage ?? "unknown", e.reason);
        break;
      case "rate_limited":
        this.domain(e.key).waits++;
        break;
      case "rate_backoff":
      case "rate_recovered": {
        const d = this.domain(e.key);
        d.factor = e.factor;
        d.rate = e.rate;
        break;
      }
      case "key_suspended":
        this.domain(e.key).suspendedUntil = Date.now() + e.ms;
        break;
      case "circuit_opened": {
        const d = this.domain(e.key);
        d.circuitOpen = true;
        d.suspendedUntil = Date.now() + e.ms;
        break;
      }
      case "circuit_closed":
        this.domain(e.key).circuitOpen = false;
        break;
    }
  }

  private itemCount(module: string): PendingCount {
    let c = this.itemCounts.get(module);
    if (c === undefined) this.itemCounts.set(module, (c = pendingCount({ module })));
    return c;
  }

  private failure(stage: string, reason: string): void {
    const { kind, code } = errorKind(reason);
    if (stage === "download" && kind === "http") return; // counted from the response already
    this.countError(stage, kind, code);
    if (stage === "download") this.throughput.inc({ stage: "download", result: "error" });
    if (stage === "parse") this.throughput.inc({ stage: "parse", result: "error" });
  }

  private countError(stage: string, kind: string, code: string): void {
    this.totals.errors++;
    this.errorsTotal.inc({ stage, kind, code });
    const k = `${stage}\u0000${kind}\u0000${code}`;
    const row = this.errorCounts.get(k);
    if (row) row.count++;
    else this.errorCounts.set(k, { stage, kind, code, count: 1 });
  }

  private domain(key: string): DomainState {
    let d = this.domains.get(key);
    if (!d) {
      if (this.domains.size >= MAX_DOMAINS) this.evictQuietDomains();
      d = { key, rate: 0, factor: 1, suspendedUntil: 0, circuitOpen: false, waits: 0, events: 0 };
      this.domains.set(key, d);
    }
    d.events++;
    return d;
  }

  /** Bounds the table: keeps the busier half. */
  private evictQuietDomains(): void {
    const keep = new Set(this.topDomains(MAX_DOMAINS / 2).map((d) => d.key));
    for (const k of this.domains.keys()) if (!keep.has(k)) this.domains.delete(k);
  }

  /** The `n` keys with the most politeness events; a held-back key first. */
  topDomains(n: number): DomainState[] {
    const now = Date.now();
    const score = (d: DomainState) => (d.circuitOpen || d.suspendedUntil > now ? 1e12 : 0) + d.events;
    return [...this.domains.values()].sort((a, b) => score(b) - score(a)).slice(0, n);
  }

  errorsByKind(): { stage: string; kind: string; code: string; count: number }[] {
    return [...this.errorCounts.values()].sort((a, b) => b.count - a.count);
  }

  /** Politeness keys for display: escaped (a key is a host name from the network). */
  domainRows(n = 20): (Omit<DomainState, "events"> & { suspended: boolean })[] {
    const now = Date.now();
    return this.topDomains(n).map(({ events: _, ...d }) => ({ ...d, key: printable(d.key), suspended: d.suspendedUntil > now }));
  }

  /** The Prometheus text exposition. */
  render(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  stop(): void {
    this.unlisten();
  }
}
