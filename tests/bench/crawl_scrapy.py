# tests/bench/crawl_scrapy.py: Scrapy on the mock shop, the same crawl as crawl-bare.ts / crawl-mocra.ts:
# from /list/0 follow every item and list link (Scrapy's own dupefilter dedups), one item per item page
# (h1.title, span.price, div.desc[:200]) into a JSONL feed in a temp dir. CONCURRENT_REQUESTS = C, no
# per-domain cap below that, no robots.txt, retries, cookies or delay; runs cold (no warm-up crawl).
#
#   python3 tests/bench/crawl_scrapy.py --url URL --items N --concurrency C [--max-secs S]
#
# Prints RESULT like crawl-mocra.ts: CPU from getrusage (user+sys, the crawl only: measured from the
# engine start), peak RSS (ru_maxrss), machine busy CPU from /proc/stat. Needs Debian's python3-scrapy;
# tests/bench/crawl-scrapy.ts runs it for benchmark_compare (BENCH_CRAWLERS=...,scrapy).
import argparse
import json
import os
import resource
import shutil
import tempfile
import time

import scrapy
from scrapy.crawler import CrawlerProcess
from scrapy import signals
from shop_spider import shop_item, shop_links

parser = argparse.ArgumentParser()
parser.add_argument("--url", required=True)
parser.add_argument("--items", type=int, default=20000)
parser.add_argument("--concurrency", type=int, default=64)
parser.add_argument("--max-secs", type=float, default=0)
parser.add_argument("--warmup-secs", type=float, default=0)  # accepted for the harness; Scrapy runs cold
args = parser.parse_args()

CLK_TCK = os.sysconf("SC_CLK_TCK")


def machine_busy_ms():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) * 1000 / CLK_TCK


def cpu_ms():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return (r.ru_utime + r.ru_stime) * 1000


def rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0


stats = {"pages": 0, "items": 0, "errors": 0}
rss_samples = []


class ShopSpider(scrapy.Spider):
    name = "shop"
    start_urls = [f"{args.url}/list/0"]

    def parse(self, response):
        stats["pages"] += 1
        item = shop_item(response)
        if item is not None:
            stats["items"] += 1
            yield item
        for url in shop_links(response, args.url):
            yield scrapy.Request(url, callback=self.parse)


out = tempfile.mkdtemp(prefix="scrapy-bench-")
settings = {
    "LOG_LEVEL": "ERROR",
    "CONCURRENT_REQUESTS": args.concurrency,
    "CONCURRENT_REQUESTS_PER_DOMAIN": args.concurrency,
    "CONCURRENT_REQUESTS_PER_IP": 0,
    "DOWNLOAD_DELAY": 0,
    "ROBOTSTXT_OBEY": False,
    "RETRY_ENABLED": False,
    "COOKIES_ENABLED": False,
    "TELNETCONSOLE_ENABLED": False,
    "AUTOTHROTTLE_ENABLED": False,
    "FEEDS": {os.path.join(out, "items.jsonl"): {"format": "jsonlines"}},
    "REQUEST_FINGERPRINTER_IMPLEMENTATION": "2.7",
}
if args.max_secs > 0:
    settings["CLOSESPIDER_TIMEOUT"] = args.max_secs

process = CrawlerProcess(settings)
crawler = process.create_crawler(ShopSpider)
t = {}


def started(spider):
    t["t0"] = time.perf_counter()
    t["cpu0"] = cpu_ms()
    t["busy0"] = machine_busy_ms()
    from twisted.internet import task

    loop = task.LoopingCall(lambda: rss_samples.append(rss_mb()))
    loop.start(1.0)
    t["loop"] = loop


def closed(spider, reason):
    t["ms"] = (time.perf_counter() - t["t0"]) * 1000
    t["cpu"] = cpu_ms() - t["cpu0"]
    t["busy"] = machine_busy_ms() - t["busy0"]
    t["reason"] = reason
    t["loop"].stop()


def errored(failure, response, spider):
    stats["errors"] += 1


crawler.signals.connect(started, signal=signals.spider_opened)
crawler.signals.connect(closed, signal=signals.spider_closed)
crawler.signals.connect(errored, signal=signals.spider_error)
process.crawl(crawler)
process.start()
shutil.rmtree(out, ignore_errors=True)
samples = rss_samples or [rss_mb()]
result = {
    "crawler": "scrapy",
    "pages": stats["pages"],
    "items": stats["items"],
    "errors": stats["errors"],
    "dead": 0,
    "partial": t.get("reason") != "finished",
    "ms": t["ms"],
    "cpuMs": t["cpu"],
    "peakRssMb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "machineBusyMs": t["busy"],
    "rss": {"first": samples[0], "middle": samples[len(samples) // 2], "last": samples[-1]},
}
print("RESULT " + json.dumps(result), flush=True)
